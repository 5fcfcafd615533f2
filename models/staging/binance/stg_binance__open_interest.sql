with

source as (

    {{ lake_source('binance', 'open_interest') }}

),

renamed as (

    select
        symbol,
        {{ adapter.quote('interval') }} as measurement_interval,
        {{ adapter.quote('date') }} as lake_date,
        measured_at,
        sum_open_interest,
        sum_open_interest_value,
        count_toptrader_long_short_ratio,
        sum_toptrader_long_short_ratio,
        count_long_short_ratio,
        sum_taker_long_short_vol_ratio,
        source as landed_via,
        ingested_at

    from source

)

select * from renamed
