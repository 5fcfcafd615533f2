{#- The features' warm-up: how much history of bars a symbol needs before its first feature row.
    Winsorisation bounds exist from the first refresh period whose trailing
    features_window_seconds all lie after the first bar (up to one window plus one period),
    and a z-score then needs a full window of bounded values: 2 x window + 1 refresh period
    (61 days with the defaults; the inputs' own 1-hour look-backs fit inside the period).
    The empty-mart gates (rows_past_warmup) and config/ingest.yml's days_back follow it. -#}
{% macro features_warmup_seconds() -%}
    {{ return(2 * (var('features_window_seconds') | int) + (var('features_quantile_refresh_seconds') | int)) }}
{%- endmacro %}

{#- `dbt run-operation features_warmup`: print the warm-up (with --vars, of those windows). -#}
{% macro features_warmup() -%}
    {%- set seconds = features_warmup_seconds() -%}
    {{ log('features warm-up: ' ~ seconds ~ ' s = ' ~ ((seconds / 86400) | round(2)) ~ ' days'
        ~ ' (2 x features_window_seconds ' ~ var('features_window_seconds')
        ~ ' + features_quantile_refresh_seconds ' ~ var('features_quantile_refresh_seconds') ~ ')',
        info=true) }}
{%- endmacro %}
