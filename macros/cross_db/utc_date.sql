{#- The UTC calendar day of a timestamp, whatever the session time zone. -#}
{% macro utc_date(ts) -%}
    {{ return(adapter.dispatch('utc_date', 'btcfs')(ts)) }}
{%- endmacro %}

{% macro default__utc_date(ts) -%}
    cast({{ ts }} as date)
{%- endmacro %}

{% macro duckdb__utc_date(ts) -%}
    cast(timezone('UTC', {{ ts }}) as date)
{%- endmacro %}

{% macro bigquery__utc_date(ts) -%}
    date({{ ts }}, 'UTC')
{%- endmacro %}
