{{
    config(
        materialized='incremental',
        unique_key=['symbol', 'open_time'],
        on_schema_change='fail',
    )
}}

{#- The SQL lives in macros/vendors/daily_series_as_of_bars.sql (shared by the 5m and 1h grids). -#}
{{ daily_series_as_of_bars(ref('bars_1h')) }}
