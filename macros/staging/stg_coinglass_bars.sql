{#- The staging body shared by the CoinGlass 5m histories (price, aggregated open interest,
    funding, taker volume, liquidations): partition keys renamed, each value column cast to
    double under its staged name, provenance kept. -#}
{% macro stg_coinglass_bars(table_name, value_columns) -%}
with

source as (

    {{ lake_source('coinglass', table_name) }}

),

renamed as (

    select
        'coinglass' as vendor,
        symbol,
        {{ adapter.quote('interval') }} as period,
        {{ adapter.quote('date') }} as lake_date,
        open_time,
        {%- for lake_column, staged_column in value_columns.items() %}
        cast({{ lake_column }} as {{ type_double() }}) as {{ staged_column }},
        {%- endfor %}
        available_at,
        is_synthetic,
        source as landed_via,
        ingested_at

    from source

)

select * from renamed
{%- endmacro %}
