with

source as (

    {{ lake_source('binance', 'perp_klines') }}

),

renamed as (

    select
        {{ binance_kline_columns() }}

    from source

)

select * from renamed
