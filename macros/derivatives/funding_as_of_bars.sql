{#- The body of an `int_funding_as_of_bars_*` model: for every bar, the latest funding event
    whose available_at <= the bar's available_at (as_of_latest_keys: the portable as-of join
    every slower source uses). When expected events are missing, the last rate is carried at
    most `ffill_max_bars` funding intervals; past that the row has no funding at all (rate,
    funding_at, age and count NULL, not flagged).
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

funding_events as (

    select
        symbol,
        'funding' as stream_name,
        available_at,
        funding_at
    from funding_rates

),

latest_keys as (

    {{ as_of_latest_keys('bars', 'funding_events', ['funding'], 'funding_at') | indent(4) }}

),

latest_event_carried as (

    select
        latest_keys.symbol,
        latest_keys.open_time,
        latest_keys.available_at,
        funding_rates.funding_at as latest_funding_at,
        funding_rates.funding_rate as latest_funding_rate,
        funding_rates.funding_interval_hours as latest_funding_interval_hours
    from latest_keys
    left join funding_rates
        on
            latest_keys.symbol = funding_rates.symbol
            and latest_keys.funding_key = funding_rates.funding_at

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
                - {{ checked_number(var('funding_available_lag_seconds'), 'funding_available_lag_seconds') }})
                / (latest_funding_interval_hours * 3600)
            ) as {{ dbt.type_bigint() }}
        ) as funding_forward_fill_events
    from latest_event_carried

),

within_reach as (

    select
        *,
        coalesce(funding_forward_fill_events <= {{ checked_number(var('ffill_max_bars'), 'ffill_max_bars') }}, false) as is_within_reach
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
