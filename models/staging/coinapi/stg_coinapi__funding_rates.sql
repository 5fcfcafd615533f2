with

source as (

    {{ lake_source('coinapi', 'coinapi_funding') }}

),

renamed as (

    select
        'coinapi' as vendor,
        symbol,
        {{ adapter.quote('date') }} as lake_date,
        funding_time as funding_at,
        cast(funding_rate as {{ type_double() }}) as funding_rate,
        available_at,
        is_synthetic,
        source as landed_via,
        ingested_at

    from source

)

select * from renamed
