{#- The update plan (warehouse/plan.py). `dbt compile --vars '{btcfs_plan: true}'` on DuckDB
    renders each value an incremental run looks up in the warehouse while compiling (a window
    start, a gate's first day) as a DuckDB variable instead of a constant, and writes the query
    that looks it up in a comment beside each use:

        to_timestamp(getvariable('btcfs_plan_<md5>') + <offset>) /* btcfs-plan btcfs_plan_<md5> if-none <rule> := <query> */

    `btcfs update` then runs that compiled SQL again and again: before each node it sets the
    node's variables from their queries, so every run reads the values the warehouse holds at
    that moment, as a fresh `dbt build` would. DuckDB folds `getvariable` to a constant, so the
    partition and zone-map pruning of a literal still applies.

    When a lookup finds nothing (an empty table), the rule says what the compile would have
    done. `origin`, a window start: the compile would have built the model in full, so the
    variable is the epoch, before every row: the incremental SQL then reads all history, which
    is a full build by the incremental models' own rule (a window before every new row gives
    what a full refresh gives). `empty`, a gate's first day: the gate would check the whole
    model, which is empty; the variable stays NULL, so the gate reads no rows either.

    In Jinja a plan value is the text '@plan|<offset seconds>|<rule>|<query giving epoch
    seconds>'; the macros that read a window start (timestamp_literal, shift_timestamp_text)
    know it. Without the var, or on another engine, none of this renders. -#}

{% macro plan_mode() -%}
    {{ return(execute and target.type == 'duckdb'
        and var('btcfs_plan', false) | string | lower in ['true', '1', 'yes']) }}
{%- endmacro %}

{#- A plan value: `query` returns one row, one column: epoch seconds (bigint); `if_none` is
    `origin` or `empty`. -#}
{% macro plan_value(query, offset_seconds=0, if_none='origin') -%}
    {%- if if_none not in ['origin', 'empty'] -%}
        {{ exceptions.raise_compiler_error('plan_value: if_none is origin or empty') }}
    {%- endif -%}
    {{ return('@plan|' ~ (offset_seconds | int) ~ '|' ~ if_none ~ '|' ~ (query | trim)) }}
{%- endmacro %}

{% macro is_plan_value(text) -%}
    {{ return(text is string and text.startswith('@plan|')) }}
{%- endmacro %}

{#- `value` (a plan value) moved by `seconds`. -#}
{% macro shift_plan_value(value, seconds) -%}
    {%- set parts = value.split('|', 3) -%}
    {{ return(plan_value(parts[3], (parts[1] | int) + (seconds | int), parts[2])) }}
{%- endmacro %}

{#- The timestamptz a plan value stands for, as SQL: the variable, and its query in a comment. -#}
{% macro plan_value_sql(value) -%}
    {%- set parts = value.split('|', 3) -%}
    {%- set query = parts[3] | replace('\n', ' ') -%}
    {%- if '*/' in query -%}
        {{ exceptions.raise_compiler_error('plan_value_sql: a plan query cannot hold */') }}
    {%- endif -%}
    {%- set name = 'btcfs_plan_' ~ local_md5(parts[2] ~ query) -%}
    {{ return("to_timestamp(getvariable('" ~ name ~ "') + " ~ (parts[1] | int) ~ ") /* btcfs-plan "
        ~ name ~ " if-none " ~ parts[2] ~ " := " ~ query ~ " */") }}
{%- endmacro %}

{#- The plan's lookup `select <newest> from <model>` for a staging view whose lake partitions
    are days of the looked-up column (gate_lake_day_node): first from the newest partition
    day's files only, found from the paths alone (glob); when that gives NULL (the day holds no
    row of `model`), from the whole view: the plan runs the query after ` btcfs-else ` then
    (DuckDB would run both halves of a coalesce). The newest row is in the newest day's
    partition, so the answer is the same. The pattern is spelt with chr(42) for `*`: a plan
    query may not hold the end of a comment. -#}
{% macro plan_newest_lake_day_query(node, model, newest) -%}
    {%- set found = namespace(source=none) -%}
    {%- for parent in node.depends_on.nodes if parent.startswith('source.') -%}
        {%- set found.source = graph.sources[parent] -%}
    {%- endfor -%}
    {%- set pattern = lake_source_pattern(found.source) | replace("'", "''") -%}
    {%- set spelt = "'" ~ pattern.split('*') | join("' || chr(42) || '") ~ "'" -%}
    {%- set newest_day = "(select max(cast(regexp_extract(file, '/date=([0-9]{4}-[0-9]{2}-[0-9]{2})/', 1) as date)) from glob("
        ~ spelt ~ "))" -%}
    {{ return('select ' ~ newest ~ ' from ' ~ model ~ ' where lake_date >= ' ~ newest_day
        ~ ' btcfs-else select ' ~ newest ~ ' from ' ~ model) }}
{%- endmacro %}
