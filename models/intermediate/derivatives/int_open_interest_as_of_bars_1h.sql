{{
    config(
        materialized='incremental',
        unique_key=['symbol', 'open_time'],
        on_schema_change='fail',
    )
}}

{#- The SQL lives in macros/derivatives/open_interest_as_of_bars.sql (shared by the 5m and 1h grids). -#}
{{ open_interest_as_of_bars(ref('bars_1h'), 3600) }}
