with

source as (

    {{ lake_source('fred', 'fred_series') }}

),

renamed as (

    select
        'fred' as vendor,
        symbol,
        {{ adapter.quote('date') }} as lake_date,
        observation_date,
        realtime_start,
        realtime_end,
        cast(value as {{ type_double() }}) as observed_value,
        available_at,
        is_synthetic,
        source as landed_via,
        ingested_at

    from source

)

select * from renamed
