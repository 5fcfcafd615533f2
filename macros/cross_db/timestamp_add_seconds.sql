{#- ts plus n seconds (n an integer expression, may be negative). -#}
{% macro timestamp_add_seconds(ts, n) -%}
    {{ return(adapter.dispatch('timestamp_add_seconds', 'btcfs')(ts, n)) }}
{%- endmacro %}

{% macro default__timestamp_add_seconds(ts, n) -%}
    {{ dbt.dateadd('second', n, ts) }}
{%- endmacro %}

{% macro duckdb__timestamp_add_seconds(ts, n) -%}
    ({{ ts }} + to_seconds(cast({{ n }} as bigint)))
{%- endmacro %}

{% macro bigquery__timestamp_add_seconds(ts, n) -%}
    timestamp_add({{ ts }}, interval cast({{ n }} as int64) second)
{%- endmacro %}
