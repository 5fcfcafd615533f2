with

source as (

    {{ lake_source('coinglass', 'cg_funding_vol_weighted') }}

),

renamed as (

    select
        'coinglass' as vendor,
        symbol,
        {{ adapter.quote('interval') }} as period,
        {{ adapter.quote('date') }} as lake_date,
        open_time,
        cast(open as {{ type_double() }}) as funding_open_pct,
        cast(high as {{ type_double() }}) as funding_high_pct,
        cast(low as {{ type_double() }}) as funding_low_pct,
        cast(close as {{ type_double() }}) as funding_close_pct,
        available_at,
        is_synthetic,
        source as landed_via,
        ingested_at

    from source

)

select * from renamed
