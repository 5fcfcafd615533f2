{#- The body of an `int_open_interest_as_of_bars_*` model: for every bar, the latest 5m
    open-interest measurement whose available_at <= the bar's available_at (union + running
    LAST_VALUE, portable to BigQuery). A missing measurement is forward-filled at most
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

measurements_and_bars as (

    select
        symbol,
        available_at,
        0 as sort_order,
        cast(null as {{ dbt.type_timestamp() }}) as open_time,
        measured_at,
        sum_open_interest,
        sum_open_interest_value
    from open_interest

    union all

    select
        symbol,
        available_at,
        1 as sort_order,
        open_time,
        null as measured_at,
        null as sum_open_interest,
        null as sum_open_interest_value
    from bars

),

latest_measurement_carried as (

    select
        symbol,
        available_at,
        sort_order,
        open_time,
        last_value(measured_at ignore nulls) over (
            partition by symbol
            order by available_at, sort_order
            rows between unbounded preceding and current row
        ) as latest_measured_at,
        last_value(sum_open_interest ignore nulls) over (
            partition by symbol
            order by available_at, sort_order
            rows between unbounded preceding and current row
        ) as latest_sum_open_interest,
        last_value(sum_open_interest_value ignore nulls) over (
            partition by symbol
            order by available_at, sort_order
            rows between unbounded preceding and current row
        ) as latest_sum_open_interest_value
    from measurements_and_bars

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
                - {{ var('open_interest_available_lag_seconds') }})
                / {{ var('open_interest_period_seconds') }}
            ) as {{ dbt.type_bigint() }}
        ) as oi_forward_fill_bars
    from latest_measurement_carried
    where sort_order = 1

),

within_reach as (

    select
        *,
        coalesce(oi_forward_fill_bars <= {{ var('ffill_max_bars') }}, false) as is_within_reach
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
