with

source as (

    {{ lake_source('coinglass', 'cg_liquidations') }}

),

renamed as (

    select
        'coinglass' as vendor,
        symbol,
        {{ adapter.quote('interval') }} as period,
        {{ adapter.quote('date') }} as lake_date,
        open_time,
        cast(long_liquidation_usd as {{ type_double() }}) as long_liquidation_usd,
        cast(short_liquidation_usd as {{ type_double() }}) as short_liquidation_usd,
        available_at,
        is_synthetic,
        source as landed_via,
        ingested_at

    from source

)

select * from renamed
