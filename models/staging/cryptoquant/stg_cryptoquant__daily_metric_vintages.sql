with

source as (

    {{ lake_source('cryptoquant', 'cq_daily') }}

),

renamed as (

    select
        'cryptoquant' as vendor,
        symbol,
        {{ adapter.quote('date') }} as lake_date,
        observation_date,
        metric,
        cast(value as {{ type_double() }}) as observed_value,
        first_seen_at,
        -- never before the value was first landed, whatever the loader stamped
        case when available_at < first_seen_at then first_seen_at else available_at end
            as available_at,
        is_synthetic,
        source as landed_via,
        ingested_at

    from source

)

select * from renamed
