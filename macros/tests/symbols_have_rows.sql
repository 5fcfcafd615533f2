{#- Every symbol the var `symbols` lists has rows in the model (warn): a listed symbol the lake
    never landed builds nothing, silently, without this line. A warning, not an error, so that a
    lake of one of the default symbols still builds and publishes. -#}
{% test symbols_have_rows(model, dataset) %}
{{ config(severity='warn', tags=['gate']) }}

with

listed as (

    {%- for symbol in var('symbols') %}
    select {{ checked_symbol(symbol) }} as symbol
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- else %}
    select cast(null as {{ dbt.type_string() }}) as symbol
    where false
    {%- endfor %}

),

present as (

    select distinct symbol from {{ model }}

),

final as (

    select
        '{{ dataset }}' as dataset,
        listed.symbol,
        {{ utc_date(dbt.current_timestamp()) }} as day,
        cast(1 as {{ dbt.type_bigint() }}) as failing_count,
        'the var symbols lists ' || listed.symbol || ' but {{ dataset }} has no rows of it: '
        || 'land it (config/ingest.yml symbols) or leave it out of symbols' as detail
    from listed
    left join present
        on listed.symbol = present.symbol
    where present.symbol is null

)

select * from final
{% endtest %}
