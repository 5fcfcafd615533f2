{#- Whole seconds since 1970-01-01 UTC (bigint), rounded down: the numeric order key that
    BigQuery RANGE frames need, and an exact integer on both engines. -#}
{% macro epoch_seconds(ts) -%}
    {{ return(adapter.dispatch('epoch_seconds', 'btcfs')(ts)) }}
{%- endmacro %}

{% macro default__epoch_seconds(ts) -%}
    cast(floor(extract(epoch from {{ ts }})) as {{ dbt.type_bigint() }})
{%- endmacro %}

{% macro duckdb__epoch_seconds(ts) -%}
    {#- epoch() is a double; epoch_us() is exact, and // floors. -#}
    (epoch_us({{ ts }}) // 1000000)
{%- endmacro %}

{% macro bigquery__epoch_seconds(ts) -%}
    unix_seconds({{ ts }})
{%- endmacro %}
