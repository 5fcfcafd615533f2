{#- Rows where `expression` is false (or NULL), counted per symbol and day. -#}
{% test expression_true_per_day(model, expression, time_column, dataset, what) %}
{{ config(tags=['gate']) }}

with

per_day as (

    select
        symbol,
        {{ utc_date(time_column) }} as day,
        sum(case when {{ expression }} then 0 else 1 end) as bad_rows
    from {{ gate_relation(model, time_column) }}
    group by symbol, {{ utc_date(time_column) }}

),

final as (

    select
        '{{ dataset }}' as dataset,
        symbol,
        day,
        cast(bad_rows as {{ dbt.type_bigint() }}) as failing_count,
        {{ gate_text('bad_rows') }} || ' rows {{ what }}' as detail
    from per_day
    where bad_rows > 0

)

select * from final
{% endtest %}
