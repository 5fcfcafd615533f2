{#- The staging body shared by the four Binance kline sources (spot, perp, mark, premium):
    same lake schema, same renames. Partition keys come from the Hive path. -#}
{% macro stg_binance_klines(table_name) -%}
with

source as (

    {{ lake_source('binance', table_name) }}

),

renamed as (

    select
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

    from source

)

select * from renamed
{%- endmacro %}
