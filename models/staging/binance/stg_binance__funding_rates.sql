with

source as (

    {{ lake_source('binance', 'funding') }}

),

renamed as (

    select
        symbol,
        {{ adapter.quote('date') }} as lake_date,
        funding_time as reported_funding_at,
        funding_rate,
        mark_price,
        funding_interval_hours,
        source as landed_via,
        ingested_at

    from source

)

select * from renamed
