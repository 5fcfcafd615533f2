{#- A join clause that fans each row out to one row per integer from `first` to `last` (both
    included), as a relation aliased `alias` whose one column is `column_name` (reachable as
    alias.column_name on both engines). -#}
{% macro integer_range_join(first, last, alias, column_name) -%}
    {{ return(adapter.dispatch('integer_range_join', 'btcfs')(first, last, alias, column_name)) }}
{%- endmacro %}

{% macro default__integer_range_join(first, last, alias, column_name) -%}
    cross join unnest(generate_series({{ first }}, {{ last }})) as {{ alias }} ({{ column_name }})
{%- endmacro %}

{% macro bigquery__integer_range_join(first, last, alias, column_name) -%}
    {#- Structs, so the column is reachable as alias.column_name like on DuckDB. -#}
    cross join unnest(
        array(
            select as struct generated_number as {{ column_name }}
            from unnest(generate_array({{ first }}, {{ last }})) as generated_number
        )
    ) as {{ alias }}
{%- endmacro %}
