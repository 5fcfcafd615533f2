{#- `dbt source freshness` over the lake: a dataset with no partition file yet (not landed)
    reports "never loaded" (a warning under warn_after) instead of failing on read_parquet's
    "No files found". Overrides dbt's dispatched collect_freshness on DuckDB only. -#}
{% macro duckdb__collect_freshness(source, loaded_at_field, filter) %}
    {%- set node = none -%}
    {%- for candidate in graph.sources.values()
        if candidate.identifier == source.identifier and candidate.schema == source.schema -%}
        {%- set node = candidate -%}
        {%- if lake_source_files_exist(candidate) -%}
            {{ return(default__collect_freshness(source, loaded_at_field, filter)) }}
        {%- endif -%}
        {% call statement('collect_freshness', fetch_result=True, auto_begin=False) -%}
            select cast(null as timestamptz) as max_loaded_at, {{ current_timestamp() }} as snapshotted_at
        {%- endcall %}
        {{ return(load_result('collect_freshness')) }}
    {%- endfor -%}
    {{ return(default__collect_freshness(source, loaded_at_field, filter)) }}
{% endmacro %}
