with

source as (

    {{ lake_source('coinglass', 'cg_oi_aggregated') }}

),

renamed as (

    select
        'coinglass' as vendor,
        symbol,
        {{ adapter.quote('interval') }} as period,
        {{ adapter.quote('date') }} as lake_date,
        open_time,
        cast(open as {{ type_double() }}) as open_interest_open_usd,
        cast(high as {{ type_double() }}) as open_interest_high_usd,
        cast(low as {{ type_double() }}) as open_interest_low_usd,
        cast(close as {{ type_double() }}) as open_interest_close_usd,
        available_at,
        is_synthetic,
        source as landed_via,
        ingested_at

    from source

)

select * from renamed
