{{
    config(
        materialized='incremental',
        unique_key=['symbol', 'open_time'],
        on_schema_change='fail',
    )
}}

{#- The SQL lives in macros/bars/gap_fill_minute_bars.sql, shared by the spot and perp spines. -#}
{{ gap_fill_minute_bars(ref('stg_binance__spot_klines')) }}
