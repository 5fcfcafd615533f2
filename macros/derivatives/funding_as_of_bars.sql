{#- The body of an `int_funding_as_of_bars_*` model: for every bar, the latest funding event
    whose available_at <= the bar's available_at (an as-of join written as a union and a
    running LAST_VALUE, which both DuckDB and BigQuery run; BigQuery has no ASOF JOIN).
    Events sort before bars at equal available_at, so "<=" holds. When expected events are
    missing, the last rate is carried at most `ffill_max_bars` funding intervals; past that the
    row has no funding at all (rate, funding_at, age and count NULL, not flagged).
    Incremental runs rebuild the bars from `incremental_window_start`, reading only the events
    that can still be within reach of them. -#}
{% macro funding_as_of_bars(bars, bar_seconds) -%}
{%- set window_start = incremental_window_start('open_time', bar_seconds) -%}
{%- set reach_seconds = (var('ffill_max_bars') | int + 2) * (var('funding_interval_hours_default') | int) * 3600 -%}

with

bars as (

    select * from {{ bars }}
    {%- if window_start is not none %}
    where open_time >= {{ timestamp_literal(window_start) }}
    {%- endif %}

),

funding_rates as (

    select * from {{ ref('int_funding_rates_floored') }}
    {%- if window_start is not none %}
    where available_at >= {{ timestamp_add_seconds(timestamp_literal(window_start), -reach_seconds) }}
    {%- endif %}

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

within_reach as (

    select
        *,
        coalesce(funding_forward_fill_events <= {{ var('ffill_max_bars') }}, false) as is_within_reach
    from age_measured

),

final as (

    select
        symbol,
        open_time,
        available_at,
        case when is_within_reach then cast(latest_funding_rate as {{ type_double() }}) end
            as funding_rate,
        case when is_within_reach then latest_funding_at end as funding_at,
        case
            when is_within_reach then cast(funding_age_seconds / 60 as {{ dbt.type_bigint() }})
        end as funding_age_minutes,
        is_within_reach and funding_forward_fill_events > 0 as is_funding_forward_filled,
        case when is_within_reach then funding_forward_fill_events end
            as funding_forward_fill_events
    from within_reach

)

select * from final
{%- endmacro %}
