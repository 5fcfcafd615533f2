{#- The features' warm-up: how much history of bars a symbol needs before its first feature row.
    A row needs z-score parameters for its day (int_feature_zscore_params), which exist from the
    first refresh period whose trailing features_window_seconds all lie after the inputs' first
    values: one window plus at most one period (31 days with the defaults; the inputs' own
    1-hour look-backs fit inside the period). The empty-mart gates (rows_past_warmup) and
    config/ingest.yml's days_back follow it. -#}
{% macro features_warmup_seconds() -%}
    {{ return((var('features_window_seconds') | int) + (var('features_quantile_refresh_seconds') | int)) }}
{%- endmacro %}

{#- `dbt run-operation features_warmup`: print the warm-up (with --vars, of those windows). -#}
{% macro features_warmup() -%}
    {%- set seconds = features_warmup_seconds() -%}
    {{ log('features warm-up: ' ~ seconds ~ ' s = ' ~ ((seconds / 86400) | round(2)) ~ ' days'
        ~ ' (features_window_seconds ' ~ var('features_window_seconds')
        ~ ' + features_quantile_refresh_seconds ' ~ var('features_quantile_refresh_seconds') ~ ')',
        info=true) }}
{%- endmacro %}
