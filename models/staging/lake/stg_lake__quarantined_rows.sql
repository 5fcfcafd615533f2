with

source as (

    {{ lake_source('lake', 'quarantine') }}

),

renamed as (

    select
        vendor,
        dataset,
        symbol,
        {{ adapter.quote('interval') }} as dataset_interval,
        {{ adapter.quote('date') }} as lake_date,
        event_time as event_at,
        reason,
        raw as raw_row,
        source as landed_via,
        ingested_at

    from source

)

select * from renamed
