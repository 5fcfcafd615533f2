with

source as (

    {{ lake_source('coinglass', 'cg_price_ohlc') }}

),

renamed as (

    select
        {{ coinglass_bar_keys() }},
        cast(open as {{ type_double() }}) as open,
        cast(high as {{ type_double() }}) as high,
        cast(low as {{ type_double() }}) as low,
        cast(close as {{ type_double() }}) as close,
        cast(volume_usd as {{ type_double() }}) as volume_usd,
        {{ coinglass_bar_provenance() }}

    from source

)

select * from renamed
