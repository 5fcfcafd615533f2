{#-
    Features and labels of the same 5-minute bar, one row per (symbol, open_time): what the
    trainer reads. available_at (when the features are known) and t1 (when the label is) bound
    each row's information interval for purged, embargoed cross-validation.
-#}

{{
    config(
        materialized='incremental',
        unique_key=['symbol', 'open_time'],
        on_schema_change='fail',
    )
}}

{#- Incremental runs rewrite the rows whose 1-day forward return (288 bars) may have been NULL. -#}
{%- set output_start = shift_timestamp_text(incremental_window_start('open_time', 86400), -288 * 300) -%}

with

features as (
    select * from {{ ref('features_5m') }}
    where {{ at_or_after('open_time', output_start) }}
),

labels as (
    select * from {{ ref('labels_5m') }}
    where {{ at_or_after('open_time', output_start) }}
),

final as (
    select
        {%- for column in feature_columns() %}
        features.{{ column }},
        {%- endfor %}
        labels.fwd_ret_5m,
        labels.fwd_ret_1h,
        labels.fwd_ret_4h,
        labels.fwd_ret_1d,
        labels.atr,
        labels.upper_barrier,
        labels.lower_barrier,
        labels.barrier_label,
        labels.touch_type,
        labels.is_both_barriers_touched,
        labels.bars_to_touch,
        labels.t1
    from features
    inner join labels
        on
            features.symbol = labels.symbol
            and features.open_time = labels.open_time
)

select * from final
