{#- A UTC timestamp constant from text like '2025-05-19 00:00:00' (no zone; read as UTC). -#}
{% macro timestamp_literal(text) -%}
    {{ return(adapter.dispatch('timestamp_literal', 'btcfs')(text)) }}
{%- endmacro %}

{% macro default__timestamp_literal(text) -%}
    cast('{{ text }}' as {{ dbt.type_timestamp() }})
{%- endmacro %}

{#- A plan value (update_plan.sql) is the variable that stands for it. -#}
{% macro duckdb__timestamp_literal(text) -%}
    {%- if is_plan_value(text) -%}
        {{ plan_value_sql(text) }}
    {%- else -%}
        cast('{{ text }}+00' as timestamptz)
    {%- endif -%}
{%- endmacro %}

{% macro bigquery__timestamp_literal(text) -%}
    timestamp('{{ text }}', 'UTC')
{%- endmacro %}
