with

source as (

    {{ lake_source('coinglass', 'cg_taker_volume_agg_futures') }}

),

renamed as (

    select
        'coinglass' as vendor,
        symbol,
        {{ adapter.quote('interval') }} as period,
        {{ adapter.quote('date') }} as lake_date,
        open_time,
        cast(taker_buy_volume_usd as {{ type_double() }}) as taker_buy_volume_usd,
        cast(taker_sell_volume_usd as {{ type_double() }}) as taker_sell_volume_usd,
        available_at,
        is_synthetic,
        source as landed_via,
        ingested_at

    from source

)

select * from renamed
