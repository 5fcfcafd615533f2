{#- Shared pieces of the QA gate tests. Every gate returns one row per failing
    (dataset, symbol, day[, kind]) with the columns dataset, symbol, day, failing_count and
    detail, and stores its failures, so `report_gate_failures` (on-run-end) and `btcfs qa`
    can name the dataset, the day and the count. -#}

{% macro gate_percent(numerator, denominator) -%}
    cast(round(100.0 * {{ numerator }} / nullif({{ denominator }}, 0), 2) as {{ dbt.type_string() }})
{%- endmacro %}

{% macro gate_text(value) -%}
    cast({{ value }} as {{ dbt.type_string() }})
{%- endmacro %}

{#- The var `known_exchange_halts` (dbt_project.yml) for one dataset, as a relation. A var, not
    a seed: a test that also depended on a seed would no longer stop the models downstream of
    the model it tests (dbt only skips descendants of all of a failing test's parents). -#}
{% macro gate_known_halts(dataset) -%}
    {%- set halts = var('known_exchange_halts', []) | selectattr('dataset', 'equalto', dataset) | list -%}
    {%- for halt in halts %}
    select
        {{ checked_literal(halt.dataset, '[a-z0-9_]{1,64}', 'known_exchange_halts') }} as dataset,
        {{ checked_symbol(halt.symbol) }} as symbol,
        cast({{ checked_literal(halt.day, '[0-9]{4}-[0-9]{2}-[0-9]{2}', 'known_exchange_halts') }} as date) as day,
        {{ halt.max_missing_minutes | int }} as max_missing_minutes,
        {{ halt.max_zero_volume_minutes | int }} as max_zero_volume_minutes,
        '{{ halt.reason | replace("'", "''") }}' as reason
    {% if not loop.last %}union all{% endif %}
    {%- else %}
    select
        cast(null as {{ dbt.type_string() }}) as dataset,
        cast(null as {{ dbt.type_string() }}) as symbol,
        cast(null as date) as day,
        0 as max_missing_minutes,
        0 as max_zero_volume_minutes,
        cast(null as {{ dbt.type_string() }}) as reason
    where false
    {%- endfor %}
{%- endmacro %}

{#- The rows a gate checks: the whole model, or with the var gate_window_days = N only the
    last N UTC days of it (counted back from the model's newest row), so a daily incremental
    `dbt build --vars '{gate_window_days: 2}'` re-checks what it rebuilt instead of all history.
    Unset (the default, every plain `dbt build`) means the whole history. On a staging view
    whose lake partitions are the UTC days of `time_column` (model meta `lake_day_column`), the
    window also filters `lake_date`: the same rows, but DuckDB opens only the window's files. -#}
{% macro gate_relation(model, time_column) -%}
    {%- set days = var('gate_window_days', none) -%}
    {%- if not execute or days is none or (days | int) <= 0 -%}
        {{ return(model) }}
    {%- endif -%}
    {%- set lake_node = gate_lake_day_node(model, time_column) -%}
    {%- if plan_mode() -%}
        {#- the same first day, looked up when the plan runs (update_plan.sql) -#}
        {%- set newest = epoch_seconds(time_bucket('max(' ~ time_column ~ ')', 86400)) -%}
        {%- set query = 'select ' ~ newest ~ ' from ' ~ model -%}
        {%- if lake_node is not none -%}
            {%- set query = plan_newest_lake_day_query(lake_node, model, newest) -%}
        {%- endif -%}
        {%- set first_day = plan_value(query, -86400 * ((days | int) - 1), 'empty') -%}
    {%- else -%}
        {%- set newest = run_query('select max(' ~ time_column ~ ') from ' ~ model).columns[0].values()[0] -%}
        {%- if newest is none -%}
            {{ return(model) }}
        {%- endif -%}
        {%- set first_day = (newest - modules.datetime.timedelta(days=(days | int) - 1)).strftime('%Y-%m-%d') ~ ' 00:00:00' -%}
    {%- endif -%}
    {%- set partitions = '' -%}
    {%- if lake_node is not none -%}
        {%- set partitions = ' and lake_date >= ' ~ utc_date(timestamp_literal(first_day)) -%}
    {%- endif -%}
    {{ return('(select * from ' ~ model ~ ' where ' ~ time_column ~ ' >= '
        ~ timestamp_literal(first_day) ~ partitions ~ ') as gate_window') }}
{%- endmacro %}

{#- The model node of a gate's `model` when it is a staging view whose lake_date is the UTC day
    of `time_column` (meta `lake_day_column`), or dbt's `where` subquery of one
    (`(select * from "db"."schema"."view" where ...) dbt_subquery`); none otherwise. -#}
{% macro gate_lake_day_node(model, time_column) -%}
    {%- if model is string -%}
        {%- set parsed = modules.re.match('^\\(select \\* from (?:"[^"]+"\\.)*"([^"]+)" where ', model) -%}
        {%- set identifier = parsed.group(1) if parsed else none -%}
    {%- else -%}
        {%- set identifier = model.identifier -%}
    {%- endif -%}
    {%- for node in graph.nodes.values()
            if identifier and node.resource_type == 'model' and node.alias == identifier -%}
        {%- set meta = node.config.meta if node.config.meta else node.meta -%}
        {%- if meta.get('lake_day_column') == time_column -%}
            {{ return(node) }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(none) }}
{%- endmacro %}

{#- The relation of model `name`, looked up in the graph rather than ref()'d: a ref would make
    a gate of one mart a test of the other too, so `dbt build --select <the other>` would run it
    against a mart that may not be built yet. `test` names the gate in the error. -#}
{% macro gate_model_relation(name, test) -%}
    {%- if not execute -%}
        {{ return(name) }}
    {%- endif -%}
    {%- set node = graph.nodes.get('model.' ~ project_name ~ '.' ~ name) -%}
    {%- if not node -%}
        {{ exceptions.raise_compiler_error(test ~ ': no model named ' ~ name) }}
    {%- endif -%}
    {{ return(api.Relation.create(database=node.database, schema=node.schema, identifier=node.alias)) }}
{%- endmacro %}
