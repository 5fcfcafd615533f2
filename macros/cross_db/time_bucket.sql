{#- Start of the fixed-width bucket holding ts, counted from the Unix epoch on every engine
    (DuckDB's default origin is 2000-01-03, BigQuery's 1950-01-01: widths that do not divide
    a day would otherwise differ between them). -#}
{% macro time_bucket(ts, seconds) -%}
    {{ return(adapter.dispatch('time_bucket', 'btcfs')(ts, seconds)) }}
{%- endmacro %}

{% macro default__time_bucket(ts, seconds) -%}
    {{ timestamp_add_seconds("cast('1970-01-01 00:00:00+00' as " ~ dbt.type_timestamp() ~ ")",
        "(" ~ epoch_seconds(ts) ~ " - mod(" ~ epoch_seconds(ts) ~ ", " ~ seconds ~ "))") }}
{%- endmacro %}

{% macro duckdb__time_bucket(ts, seconds) -%}
    time_bucket(to_seconds({{ seconds }}), {{ ts }}, timestamptz '1970-01-01 00:00:00+00')
{%- endmacro %}

{% macro bigquery__time_bucket(ts, seconds) -%}
    {#- Floor division of Unix seconds: the epoch origin, spelled out (TIMESTAMP_BUCKET would
        take it as an argument but is unknown to the sqlglot-based emulator). -#}
    timestamp_seconds({{ seconds }} * cast(floor(unix_seconds({{ ts }}) / {{ seconds }}) as int64))
{%- endmacro %}
