{#- A join clause that fans each row out to one row per step from start_ts to end_ts
    (both included), as a relation aliased `spine` whose one column is `column_name`. -#}
{% macro timestamp_spine_join(start_ts, end_ts, step_seconds, column_name) -%}
    {{ return(adapter.dispatch('timestamp_spine_join', 'btcfs')(start_ts, end_ts, step_seconds, column_name)) }}
{%- endmacro %}

{% macro default__timestamp_spine_join(start_ts, end_ts, step_seconds, column_name) -%}
    cross join unnest(
        generate_series({{ start_ts }}, {{ end_ts }}, interval '{{ step_seconds }} second')
    ) as spine ({{ column_name }})
{%- endmacro %}

{% macro duckdb__timestamp_spine_join(start_ts, end_ts, step_seconds, column_name) -%}
    cross join unnest(
        generate_series({{ start_ts }}, {{ end_ts }}, to_seconds({{ step_seconds }}))
    ) as spine ({{ column_name }})
{%- endmacro %}

{% macro bigquery__timestamp_spine_join(start_ts, end_ts, step_seconds, column_name) -%}
    {#- Structs, so the generated column is reachable as spine.<column_name> like on DuckDB. -#}
    cross join unnest(
        array(
            select as struct generated_at as {{ column_name }}
            from unnest(
                generate_timestamp_array({{ start_ts }}, {{ end_ts }}, interval {{ step_seconds }} second)
            ) as generated_at
        )
    ) as spine
{%- endmacro %}
