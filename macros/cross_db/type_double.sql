{#- A 64-bit binary float. dbt.type_float() is `float` on DuckDB, which is 32-bit there. -#}
{% macro type_double() -%}
    {{ return(adapter.dispatch('type_double', 'btcfs')()) }}
{%- endmacro %}

{% macro default__type_double() -%}
    double precision
{%- endmacro %}

{% macro duckdb__type_double() -%}
    double
{%- endmacro %}

{% macro bigquery__type_double() -%}
    float64
{%- endmacro %}
