{% test no_nulls_per_day(model, columns, time_column, dataset) %}
{{ config(tags=['gate']) }}

with

per_day as (

    select
        symbol,
        {{ utc_date(time_column) }} as day,
        {%- for column in columns %}
        sum(case when {{ column }} is null then 1 else 0 end) as nulls_{{ loop.index }}{{ "," if not loop.last }}
        {%- endfor %}
    from {{ gate_relation(model, time_column) }}
    group by symbol, {{ utc_date(time_column) }}

),

nulls_counted as (

    {% for column in columns %}
    select
        symbol,
        day,
        '{{ column }}' as column_name,
        nulls_{{ loop.index }} as null_rows
    from per_day
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

final as (

    select
        '{{ dataset }}' as dataset,
        symbol,
        day,
        cast(null_rows as {{ dbt.type_bigint() }}) as failing_count,
        {{ gate_text('null_rows') }} || ' NULL values in column ' || column_name as detail
    from nulls_counted
    where null_rows > 0

)

select * from final
{% endtest %}
