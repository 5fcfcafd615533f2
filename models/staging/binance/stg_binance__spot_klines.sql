with

source as (

    {{ lake_source('binance', 'spot_klines') }}

),

renamed as (

    select
        {{ binance_kline_columns() }}

    from source

)

select * from renamed
