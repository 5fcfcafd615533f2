{% test unique_key_per_day(model, key_columns, time_column, dataset) %}
{{ config(tags=['gate']) }}

with

keys_counted as (

    select
        symbol,
        {{ utc_date(time_column) }} as day,
        count(*) as key_rows
    from {{ gate_relation(model, time_column) }}
    group by {{ key_columns | join(', ') }}, {{ utc_date(time_column) }}
    having count(*) > 1

),

final as (

    select
        '{{ dataset }}' as dataset,
        symbol,
        day,
        cast(sum(key_rows - 1) as {{ dbt.type_bigint() }}) as failing_count,
        {{ gate_text('sum(key_rows - 1)') }} || ' duplicated rows on key ({{ key_columns | join(", ") }}), '
        || {{ gate_text('count(*)') }} || ' keys affected' as detail
    from keys_counted
    group by symbol, day

)

select * from final
{% endtest %}
