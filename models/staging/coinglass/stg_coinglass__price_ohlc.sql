with

source as (

    {{ lake_source('coinglass', 'cg_price_ohlc') }}

),

renamed as (

    select
        'coinglass' as vendor,
        symbol,
        {{ adapter.quote('interval') }} as period,
        {{ adapter.quote('date') }} as lake_date,
        open_time,
        cast(open as {{ type_double() }}) as open,
        cast(high as {{ type_double() }}) as high,
        cast(low as {{ type_double() }}) as low,
        cast(close as {{ type_double() }}) as close,
        cast(volume_usd as {{ type_double() }}) as volume_usd,
        available_at,
        is_synthetic,
        source as landed_via,
        ingested_at

    from source

)

select * from renamed
