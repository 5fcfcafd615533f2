{#- `select * from` a lake source, or, when the lake holds no partition file for it yet, an
    empty relation with the source's declared columns and types, so a lake with only some
    datasets still builds. Only staging models call it. The check runs at compile time (each
    dbt invocation compiles afresh); a dataset landed later appears on the next run. -#}
{% macro lake_source(source_name, table_name) -%}
    {{ return(adapter.dispatch('lake_source', 'btcfs')(source_name, table_name)) }}
{%- endmacro %}

{% macro default__lake_source(source_name, table_name) -%}
    {#- Warehouses load the lake into tables (BigQuery): an absent dataset is an empty table. -#}
    select * from {{ source(source_name, table_name) }}
{%- endmacro %}

{% macro duckdb__lake_source(source_name, table_name) -%}
    {%- set relation = source(source_name, table_name) -%}
    {%- if execute -%}
        {%- set node = lake_source_node(source_name, table_name) -%}
        {%- if not lake_source_files_exist(node) -%}
            {{ return(lake_source_empty(node)) }}
        {%- endif -%}
    {%- endif -%}
    select * from {{ relation }}
{%- endmacro %}

{#- True when at least one partition file of the source node exists (DuckDB glob()). -#}
{% macro lake_source_files_exist(node) -%}
    {%- set pattern = lake_source_pattern(node) -%}
    {%- set found = run_query("select count(*) from glob('" ~ pattern | replace("'", "''") ~ "')") -%}
    {{ return(found.columns[0].values()[0] > 0) }}
{%- endmacro %}

{% macro lake_source_node(source_name, table_name) -%}
    {%- for node in graph.sources.values() -%}
        {%- if node.source_name == source_name and node.name == table_name -%}
            {{ return(node) }}
        {%- endif -%}
    {%- endfor -%}
    {{ exceptions.raise_compiler_error("lake_source: unknown source " ~ source_name ~ "." ~ table_name) }}
{%- endmacro %}

{% macro lake_source_empty(node) -%}
    select
    {%- for column in node.columns.values() %}
        cast(null as {{ column.data_type | lower | replace(", ", ",") | replace(",", ", ") }}) as {{ adapter.quote(column.name) }}{{ "," if not loop.last }}
    {%- endfor %}
    where false
{%- endmacro %}

{#- The glob of a lake source node's partition files. -#}
{% macro lake_source_pattern(node) -%}
    {%- set meta = node.config.meta if node.config.meta else node.meta -%}
    {{ return(meta['lake_root'] ~ '/' ~ meta.get('lake_path', node.name) ~ '/' ~ meta['partition_glob']) }}
{%- endmacro %}
