{#- The no-NULL/NaN/inf gate of the published features (the other feature and label gates reuse
    macros/tests/). Same shape as every gate: one row per failing (dataset, symbol, day) with
    failing_count and a detail naming the columns, stored for report_gate_failures/btcfs qa.

    Every column of the relation is checked, read from the warehouse at run time (a column added
    to the mart is covered without editing the test): NULL anywhere, NaN or +-inf in float
    columns. `except_columns` names the columns documented as allowed to be NULL. With the var
    gate_window_days > 0 only the model's last days are checked, as in every gate. -#}
{% test finite_values_per_day(model, time_column, dataset, except_columns=[]) %}
{{ config(store_failures=true, tags=['gate']) }}

{%- set excluded = except_columns | map('lower') | list -%}
{%- set checks = [] -%}
{%- if execute -%}
    {%- for column in adapter.get_columns_in_relation(model) -%}
        {%- if column.name | lower not in excluded -%}
            {%- if column.is_float() -%}
                {%- do checks.append((column.name, '(' ~ column.name ~ ' is null or not ' ~ is_finite(column.name) ~ ')')) -%}
            {%- else -%}
                {%- do checks.append((column.name, column.name ~ ' is null')) -%}
            {%- endif -%}
        {%- endif -%}
    {%- endfor -%}
{%- endif -%}

with

per_day as (

    select
        symbol,
        {{ utc_date(time_column) }} as day,
        {%- for name, bad in checks %}
        sum(case when {{ bad }} then 1 else 0 end) as bad_{{ loop.index }},
        {%- endfor %}
        sum(
            case
                when false
                {%- for name, bad in checks %}
                    or {{ bad }}
                {%- endfor %}
                    then 1
                else 0
            end
        ) as bad_rows
    from {{ gate_relation(model, time_column) }}
    group by symbol, {{ utc_date(time_column) }}

),

final as (

    select
        '{{ dataset }}' as dataset,
        symbol,
        day,
        cast(bad_rows as {{ dbt.type_bigint() }}) as failing_count,
        {{ gate_text('bad_rows') }} || ' rows with NULL, NaN or inf in:'
        {%- for name, bad in checks %}
        || case when bad_{{ loop.index }} > 0 then ' {{ name }}' else '' end
        {%- endfor %} as detail
    from per_day
    where bad_rows > 0

)

select * from final
{% endtest %}
