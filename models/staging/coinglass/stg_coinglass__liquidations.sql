with

source as (

    {{ lake_source('coinglass', 'cg_liquidations') }}

),

renamed as (

    select
        {{ coinglass_bar_keys() }},
        cast(long_liquidation_usd as {{ type_double() }}) as long_liquidation_usd,
        cast(short_liquidation_usd as {{ type_double() }}) as short_liquidation_usd,
        {{ coinglass_bar_provenance() }}

    from source

)

select * from renamed
