{{
    config(
        materialized='incremental',
        unique_key=['symbol', 'open_time'],
        on_schema_change='fail',
    )
}}

{#- The SQL lives in macros/features/features_mart.sql, shared with features_5m; bars_5m gives
    the last 5m return and the realised volatility inside each hour. -#}
{{ features_mart(
    interval_seconds=3600,
    bars=ref('bars_1h'),
    perp_bars=ref('perp_bars_1h'),
    funding=ref('int_funding_as_of_bars_1h'),
    open_interest=ref('int_open_interest_as_of_bars_1h'),
    intraday_vendors=ref('int_intraday_vendor_metrics_as_of_bars_1h'),
    daily_series=ref('int_daily_series_as_of_bars_1h'),
    five_minute_bars=ref('bars_5m'),
) }}
