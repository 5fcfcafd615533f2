{{
    config(
        materialized='incremental',
        unique_key=['symbol', 'bar_interval', 'quantile_period'],
        on_schema_change='fail',
    )
}}

{#- What a feature mart z-scores its inputs with, one row per symbol, bar interval and period
    (a UTC day, `features_quantile_refresh_seconds`): for each input x of
    int_feature_zscore_inputs_*, from its values in the `features_window_seconds` (30 days)
    before the period starts,

        x_lower, x_upper   the winsorisation bounds: the 1 % and 99 % quantiles
        x_mean, x_sd       the mean and sample standard deviation of the values clipped to them

    so a bar's z-score (x clipped to its period's bounds, minus the mean, over the sd) uses only
    values known before its period began. All four are NULL for a period whose window does
    not lie inside the input's observed history (it is still warming up). A sliding quantile
    has no portable form (BigQuery's PERCENTILE_CONT takes no frame), a per-period quantile
    over a GROUP BY of an explicit fan-out does: each bar joins the windows of the
    `window / refresh` (30) periods after its own. -#}
{%- set window_seconds = var('features_window_seconds') | int -%}
{%- set refresh_seconds = var('features_quantile_refresh_seconds') | int -%}
{%- set refresh_periods = window_seconds // refresh_seconds -%}
{%- set inputs = ['rv_5m', 'volume', 'oi_change_1h', 'funding_rate', 'cvd_diff_60m'] -%}
{%- set output_start = incremental_window_start('period_start', refresh_seconds) -%}
{%- set read_start = shift_timestamp_text(output_start, -(window_seconds + refresh_seconds)) -%}
{%- set epoch = timestamp_literal('1970-01-01 00:00:00') -%}
{%- set period_start = timestamp_add_seconds(epoch, 'moments.quantile_period * ' ~ refresh_seconds) -%}
{%- set output_periods = 'true' if output_start is none else
    '(inputs_unioned.quantile_period + window_steps.periods_ahead) * ' ~ refresh_seconds
    ~ ' >= ' ~ epoch_seconds(timestamp_literal(output_start)) -%}

with

inputs_5m as (
    select * from {{ ref('int_feature_zscore_inputs_5m') }}
    where {{ at_or_after('open_time', read_start) }}
),

inputs_1h as (
    select * from {{ ref('int_feature_zscore_inputs_1h') }}
    where {{ at_or_after('open_time', read_start) }}
),

inputs_unioned as (
    select
        symbol,
        '5m' as bar_interval,
        epoch_s,
        cast(floor(epoch_s / {{ refresh_seconds }}) as {{ dbt.type_bigint() }}) as quantile_period,
        rv_5m,
        volume,
        oi_change_1h,
        funding_rate,
        cvd_diff_60m
    from inputs_5m
    union all
    select
        symbol,
        '1h' as bar_interval,
        epoch_s,
        cast(floor(epoch_s / {{ refresh_seconds }}) as {{ dbt.type_bigint() }}) as quantile_period,
        rv_5m,
        volume,
        oi_change_1h,
        funding_rate,
        cvd_diff_60m
    from inputs_1h
),

input_history as (
    -- when each input was first observed, over its whole history (not the read range: an
    -- incremental run must judge warm-up as a full build does, gaps included)
    {%- for interval in ['5m', '1h'] %}
    select
        symbol,
        '{{ interval }}' as bar_interval,
        {%- for column in inputs %}
        min(case when {{ column }} is not null then epoch_s end) as {{ column }}_first_epoch_s,
        {%- endfor %}
        max(cast(floor(epoch_s / {{ refresh_seconds }}) as {{ dbt.type_bigint() }})) as last_quantile_period
    from {{ ref('int_feature_zscore_inputs_' ~ interval) }}
    group by symbol
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

windows_fanned_out as (
    -- each bar, once in the trailing window of each of the {{ refresh_periods }} periods after its own
    select
        inputs_unioned.symbol,
        inputs_unioned.bar_interval,
        inputs_unioned.quantile_period + window_steps.periods_ahead as quantile_period,
        inputs_unioned.rv_5m,
        inputs_unioned.volume,
        inputs_unioned.oi_change_1h,
        inputs_unioned.funding_rate,
        inputs_unioned.cvd_diff_60m
    from inputs_unioned
    inner join input_history
        on
            inputs_unioned.symbol = input_history.symbol
            and inputs_unioned.bar_interval = input_history.bar_interval
    {{ integer_range_join(1, refresh_periods, 'window_steps', 'periods_ahead') }}
    where
        inputs_unioned.quantile_period + window_steps.periods_ahead <= input_history.last_quantile_period
        -- only the periods this run writes (final keeps no other): an update computes the
        -- windows of the periods from output_start on, not of every period its inputs reach
        and {{ output_periods }}
),

bounds as (
    {{ grouped_quantiles(
        'windows_fanned_out',
        ['symbol', 'bar_interval', 'quantile_period'],
        inputs,
        {'lower': var('features_winsor_lower'), 'upper': var('features_winsor_upper')},
    ) | indent(4) }}
),

moments as (
    -- mean and sample standard deviation of the window's values clipped to its bounds
    select
        windows_fanned_out.symbol,
        windows_fanned_out.bar_interval,
        windows_fanned_out.quantile_period,
        {%- for column in inputs %}
        avg({{ clipped_to_day_bounds(column, 'windows_fanned_out', 'bounds') }}) as {{ column }}_mean,
        stddev_samp({{ clipped_to_day_bounds(column, 'windows_fanned_out', 'bounds') }}) as {{ column }}_sd,
        {%- endfor %}
        count(*) as window_bars
    from windows_fanned_out
    inner join bounds
        on
            windows_fanned_out.symbol = bounds.symbol
            and windows_fanned_out.bar_interval = bounds.bar_interval
            and windows_fanned_out.quantile_period = bounds.quantile_period
    group by windows_fanned_out.symbol, windows_fanned_out.bar_interval, windows_fanned_out.quantile_period
),

final as (
    select
        moments.symbol,
        moments.bar_interval,
        moments.quantile_period,
        {{ period_start }} as period_start,
        {%- for column in inputs %}
        {%- set warm = 'input_history.' ~ column ~ '_first_epoch_s <= moments.quantile_period * '
            ~ refresh_seconds ~ ' - ' ~ window_seconds %}
        case when {{ warm }} then bounds.{{ column }}_lower end as {{ column }}_lower,
        case when {{ warm }} then bounds.{{ column }}_upper end as {{ column }}_upper,
        case when {{ warm }} then moments.{{ column }}_mean end as {{ column }}_mean,
        case when {{ warm }} then moments.{{ column }}_sd end as {{ column }}_sd,
        {%- endfor %}
        moments.window_bars
    from moments
    inner join bounds
        on
            moments.symbol = bounds.symbol
            and moments.bar_interval = bounds.bar_interval
            and moments.quantile_period = bounds.quantile_period
    inner join input_history
        on
            moments.symbol = input_history.symbol
            and moments.bar_interval = input_history.bar_interval
    where {{ at_or_after(period_start, output_start) }}
)

select * from final
