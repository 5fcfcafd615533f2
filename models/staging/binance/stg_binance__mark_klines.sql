with

source as (

    {{ lake_source('binance', 'mark_klines') }}

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
