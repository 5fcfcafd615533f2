with

source as (

    {{ lake_source('coinglass', 'cg_funding_vol_weighted') }}

),

renamed as (

    select
        {{ coinglass_bar_keys() }},
        cast(open as {{ type_double() }}) as funding_open_pct,
        cast(high as {{ type_double() }}) as funding_high_pct,
        cast(low as {{ type_double() }}) as funding_low_pct,
        cast(close as {{ type_double() }}) as funding_close_pct,
        {{ coinglass_bar_provenance() }}

    from source

)

select * from renamed
