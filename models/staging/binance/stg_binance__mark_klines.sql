with

source as (

    {{ lake_source('binance', 'mark_klines') }}

),

renamed as (

    select
        {{ binance_kline_columns() }}

    from source

)

select * from renamed
