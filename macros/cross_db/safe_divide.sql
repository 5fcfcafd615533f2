{#- a / b as a double, NULL (never an error, NaN or inf) when b is 0 or NULL. -#}
{% macro safe_divide(a, b) -%}
    {{ return(adapter.dispatch('safe_divide', 'btcfs')(a, b)) }}
{%- endmacro %}

{% macro default__safe_divide(a, b) -%}
    (cast({{ a }} as {{ type_double() }}) / nullif(cast({{ b }} as {{ type_double() }}), 0))
{%- endmacro %}

{% macro duckdb__safe_divide(a, b) -%}
    (cast({{ a }} as double) / nullif(cast({{ b }} as double), 0))
{%- endmacro %}

{% macro bigquery__safe_divide(a, b) -%}
    safe_divide(cast({{ a }} as float64), cast({{ b }} as float64))
{%- endmacro %}
