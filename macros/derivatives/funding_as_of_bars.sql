{#- The body of an `int_funding_as_of_bars_*` model: for every bar, the latest funding event
    whose available_at <= the bar's available_at (an as-of join written as a union and a
    running LAST_VALUE, which both DuckDB and BigQuery run; BigQuery has no ASOF JOIN).
    Events sort before bars at equal available_at, so "<=" holds. When expected events are
    missing, the last rate is carried at most `ffill_max_bars` funding intervals, then NULL. -#}
{% macro funding_as_of_bars(bars) -%}

with

bars as (

    select * from {{ bars }}

),

funding_rates as (

    select * from {{ ref('int_funding_rates_floored') }}

),

events_and_bars as (

    select
        symbol,
        available_at,
        0 as sort_order,
        cast(null as {{ dbt.type_timestamp() }}) as open_time,
        funding_at,
        funding_rate,
        funding_interval_hours
    from funding_rates

    union all

    select
        symbol,
        available_at,
        1 as sort_order,
        open_time,
        null as funding_at,
        null as funding_rate,
        null as funding_interval_hours
    from bars

),

latest_event_carried as (

    select
        symbol,
        available_at,
        sort_order,
        open_time,
        last_value(funding_at ignore nulls) over (
            partition by symbol
            order by available_at, sort_order
            rows between unbounded preceding and current row
        ) as latest_funding_at,
        last_value(funding_rate ignore nulls) over (
            partition by symbol
            order by available_at, sort_order
            rows between unbounded preceding and current row
        ) as latest_funding_rate,
        last_value(funding_interval_hours ignore nulls) over (
            partition by symbol
            order by available_at, sort_order
            rows between unbounded preceding and current row
        ) as latest_funding_interval_hours
    from events_and_bars

),

age_measured as (

    select
        symbol,
        open_time,
        available_at,
        latest_funding_at,
        latest_funding_rate,
        {{ seconds_between('latest_funding_at', 'available_at') }} as funding_age_seconds,
        -- Events due after the one used that should have been known by now (0 when on time).
        cast(
            floor(
                ({{ seconds_between('latest_funding_at', 'available_at') }}
                - {{ var('funding_available_lag_seconds') }})
                / (latest_funding_interval_hours * 3600)
            ) as {{ dbt.type_bigint() }}
        ) as funding_forward_fill_events
    from latest_event_carried
    where sort_order = 1

),

final as (

    select
        symbol,
        open_time,
        available_at,
        case
            when funding_forward_fill_events <= {{ var('ffill_max_bars') }}
                then cast(latest_funding_rate as {{ type_double() }})
        end as funding_rate,
        latest_funding_at as funding_at,
        cast(funding_age_seconds / 60 as {{ dbt.type_bigint() }}) as funding_age_minutes,
        funding_forward_fill_events > 0 as is_funding_forward_filled,
        funding_forward_fill_events
    from age_measured

)

select * from final
{%- endmacro %}
