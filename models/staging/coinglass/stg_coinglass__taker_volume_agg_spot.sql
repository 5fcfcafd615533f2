with

source as (

    {{ lake_source('coinglass', 'cg_taker_volume_agg_spot') }}

),

renamed as (

    select
        {{ coinglass_bar_keys() }},
        cast(taker_buy_volume_usd as {{ type_double() }}) as taker_buy_volume_usd,
        cast(taker_sell_volume_usd as {{ type_double() }}) as taker_sell_volume_usd,
        {{ coinglass_bar_provenance() }}

    from source

)

select * from renamed
