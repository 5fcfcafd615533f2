{#- Column blocks the staging models of one vendor share (each model shows its own CTEs and
    the columns that are its own). -#}

{#- A Binance kline table's columns under their staged names (spot, perp, mark and premium
    klines share one lake schema): partition keys renamed, `source` -> landed_via. -#}
{% macro binance_kline_columns() -%}
        symbol,
        {{ adapter.quote('interval') }} as kline_interval,
        {{ adapter.quote('date') }} as lake_date,
        open_time,
        close_time,
        open,
        high,
        low,
        close,
        volume,
        quote_volume,
        trade_count,
        taker_buy_base_volume,
        taker_buy_quote_volume,
        source as landed_via,
        ingested_at
{%- endmacro %}

{#- The key columns every CoinGlass 5m history starts with: the vendor, the lake symbol, the
    partition keys renamed (`interval` -> period, `date` -> lake_date) and the bar's open. -#}
{% macro coinglass_bar_keys() -%}
        'coinglass' as vendor,
        symbol,
        {{ adapter.quote('interval') }} as period,
        {{ adapter.quote('date') }} as lake_date,
        open_time
{%- endmacro %}

{#- ...and the provenance columns it ends with. -#}
{% macro coinglass_bar_provenance() -%}
        available_at,
        is_synthetic,
        source as landed_via,
        ingested_at
{%- endmacro %}
