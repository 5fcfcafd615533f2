{{
    config(
        materialized='incremental',
        unique_key=['symbol', 'open_time'],
        on_schema_change='fail',
    )
}}

{#- The SQL lives in macros/features/features_mart.sql, shared with features_1h. -#}
{{ features_mart(
    interval_seconds=300,
    bars=ref('bars_5m'),
    perp_bars=ref('perp_bars_5m'),
    funding=ref('int_funding_as_of_bars_5m'),
    open_interest=ref('int_open_interest_as_of_bars_5m'),
    intraday_vendors=ref('int_intraday_vendor_metrics_as_of_bars_5m'),
    daily_series=ref('int_daily_series_as_of_bars_5m'),
) }}
