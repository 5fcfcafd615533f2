with

source as (

    {{ lake_source('coinglass', 'cg_oi_aggregated') }}

),

renamed as (

    select
        {{ coinglass_bar_keys() }},
        cast(open as {{ type_double() }}) as open_interest_open_usd,
        cast(high as {{ type_double() }}) as open_interest_high_usd,
        cast(low as {{ type_double() }}) as open_interest_low_usd,
        cast(close as {{ type_double() }}) as open_interest_close_usd,
        {{ coinglass_bar_provenance() }}

    from source

)

select * from renamed
