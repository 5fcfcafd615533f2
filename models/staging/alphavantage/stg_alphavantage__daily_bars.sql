with

source as (

    {{ lake_source('alphavantage', 'av_daily') }}

),

renamed as (

    select
        'alphavantage' as vendor,
        symbol,
        {{ adapter.quote('date') }} as lake_date,
        trade_date,
        cast(open as {{ type_double() }}) as open,
        cast(high as {{ type_double() }}) as high,
        cast(low as {{ type_double() }}) as low,
        cast(close as {{ type_double() }}) as close,
        volume,
        available_at,
        is_synthetic,
        source as landed_via,
        ingested_at

    from source

)

select * from renamed
