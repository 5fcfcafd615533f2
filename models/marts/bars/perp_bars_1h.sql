{{
    config(
        materialized='incremental',
        unique_key=['symbol', 'open_time'],
        on_schema_change='fail',
    )
}}

{#- The SQL lives in macros/bars/resample_bars.sql, shared by every bars mart. -#}
{{ resample_bars(ref('int_perp_bars_1m_gap_filled'), 3600) }}
