{#- Whole days since 1970-01-01 of a DATE (bigint): day arithmetic without DATE - DATE or
    DATE_DIFF, whose forms differ between engines. -#}
{% macro epoch_days(day) -%}
    {{ return(adapter.dispatch('epoch_days', 'btcfs')(day)) }}
{%- endmacro %}

{% macro default__epoch_days(day) -%}
    cast(({{ day }} - date '1970-01-01') as {{ dbt.type_bigint() }})
{%- endmacro %}

{% macro bigquery__epoch_days(day) -%}
    unix_date({{ day }})
{%- endmacro %}
