{#- True when x (a float) is neither NaN nor ±inf; NULL when x is NULL. -#}
{% macro is_finite(x) -%}
    {{ return(adapter.dispatch('is_finite', 'btcfs')(x)) }}
{%- endmacro %}

{% macro default__is_finite(x) -%}
    {#- NaN - NaN and inf - inf are NaN, which equals nothing (DuckDB orders NaN above every
        number but still NaN <> 0). -#}
    (({{ x }}) - ({{ x }}) = 0)
{%- endmacro %}

{% macro duckdb__is_finite(x) -%}
    isfinite({{ x }})
{%- endmacro %}

{% macro bigquery__is_finite(x) -%}
    (not is_nan({{ x }}) and not is_inf({{ x }}))
{%- endmacro %}
