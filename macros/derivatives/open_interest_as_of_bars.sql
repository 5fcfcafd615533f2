{#- The body of an `int_open_interest_as_of_bars_*` model: for every bar, the latest 5m
    open-interest measurement whose available_at <= the bar's available_at (as_of_latest_keys,
    portable to BigQuery). A missing measurement is forward-filled at most
    `ffill_max_bars` periods (flagged, counted); past that the row has no open interest
    (values, oi_measured_at and count NULL, not flagged). Incremental runs rebuild the bars
    from `incremental_window_start`, reading only measurements still within reach. -#}
{% macro open_interest_as_of_bars(bars, bar_seconds) -%}
{%- set window_start = incremental_window_start('open_time', bar_seconds) -%}
{%- set reach_seconds = (var('ffill_max_bars') | int + 2) * (var('open_interest_period_seconds') | int) -%}

with

bars as (

    select * from {{ bars }}
    {%- if window_start is not none %}
    where open_time >= {{ timestamp_literal(window_start) }}
    {%- endif %}

),

open_interest as (

    select * from {{ ref('int_open_interest_floored') }}
    {%- if window_start is not none %}
    where available_at >= {{ timestamp_add_seconds(timestamp_literal(window_start), -reach_seconds) }}
    {%- endif %}

),

measurement_events as (

    select
        symbol,
        'open_interest' as stream_name,
        available_at,
        measured_at
    from open_interest

),

latest_keys as (

    {{ as_of_latest_keys('bars', 'measurement_events', ['open_interest'], 'measured_at') | indent(4) }}

),

latest_measurement_carried as (

    select
        latest_keys.symbol,
        latest_keys.open_time,
        latest_keys.available_at,
        open_interest.measured_at as latest_measured_at,
        open_interest.sum_open_interest as latest_sum_open_interest,
        open_interest.sum_open_interest_value as latest_sum_open_interest_value
    from latest_keys
    left join open_interest
        on
            latest_keys.symbol = open_interest.symbol
            and latest_keys.open_interest_key = open_interest.measured_at

),

staleness_measured as (

    select
        symbol,
        open_time,
        available_at,
        latest_measured_at,
        latest_sum_open_interest,
        latest_sum_open_interest_value,
        -- Measurements due after the one used that should have been known by now.
        cast(
            floor(
                ({{ seconds_between('latest_measured_at', 'available_at') }}
                - {{ checked_number(var('open_interest_available_lag_seconds'), 'open_interest_available_lag_seconds') }})
                / {{ checked_number(var('open_interest_period_seconds'), 'open_interest_period_seconds') }}
            ) as {{ dbt.type_bigint() }}
        ) as oi_forward_fill_bars
    from latest_measurement_carried

),

within_reach as (

    select
        *,
        coalesce(oi_forward_fill_bars <= {{ checked_number(var('ffill_max_bars'), 'ffill_max_bars') }}, false) as is_within_reach
    from staleness_measured

),

final as (

    select
        symbol,
        open_time,
        available_at,
        case when is_within_reach then cast(latest_sum_open_interest as {{ type_double() }}) end
            as sum_open_interest,
        case
            when is_within_reach then cast(latest_sum_open_interest_value as {{ type_double() }})
        end as sum_open_interest_value,
        case when is_within_reach then latest_measured_at end as oi_measured_at,
        is_within_reach and oi_forward_fill_bars > 0 as is_oi_forward_filled,
        case when is_within_reach then oi_forward_fill_bars end as oi_forward_fill_bars
    from within_reach

)

select * from final
{%- endmacro %}
