with

source as (

    {{ lake_source('coinapi', 'coinapi_ohlcv') }}

),

renamed as (

    select
        'coinapi' as vendor,
        symbol,
        {{ adapter.quote('interval') }} as period,
        {{ adapter.quote('date') }} as lake_date,
        open_time,
        close_time,
        first_trade_at,
        last_trade_at,
        cast(open as {{ type_double() }}) as open,
        cast(high as {{ type_double() }}) as high,
        cast(low as {{ type_double() }}) as low,
        cast(close as {{ type_double() }}) as close,
        cast(volume as {{ type_double() }}) as volume,
        trade_count,
        available_at,
        is_synthetic,
        source as landed_via,
        ingested_at

    from source

)

select * from renamed
