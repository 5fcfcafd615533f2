{#- The gate ledger: every dbt invocation that can write the warehouse (run, build, test, seed,
    snapshot) records itself in the warehouse it writes, from on-run-start (a `started` row) and
    on-run-end (one row per node result, then a `finished` row). `btcfs publish` reads it with
    target/manifest.json to check that every gate of every model it copies passed after the
    build that last wrote that model, whoever ran dbt and however it was selected. An invocation
    with no `finished` row was interrupted (or is still running) and may have rewritten any
    model. Only dbt-made values are stored (ids, statuses, counts, a test message cleaned of
    quotes and line breaks), so no row needs dialect-specific escaping. -#}

{% macro gate_ledger_relation() -%}
    {{ return(api.Relation.create(
        database=target.database, schema=target.schema, identifier='btcfs_gate_ledger'
    )) }}
{%- endmacro %}

{% macro gate_ledger_timestamp_type() -%}
    {{ return(adapter.dispatch('gate_ledger_timestamp_type', 'btcfs')()) }}
{%- endmacro %}

{% macro default__gate_ledger_timestamp_type() -%}
    {{ return(dbt.type_timestamp()) }}
{%- endmacro %}

{#- timestamptz, so a DuckDB session in another time zone reads the same instants. -#}
{% macro duckdb__gate_ledger_timestamp_type() -%}
    {{ return('timestamptz') }}
{%- endmacro %}

{#- What kind of build this was: `--empty` and `--sample` builds write models whose gates say
    nothing of the real data, so publish refuses models they wrote. -#}
{% macro gate_ledger_command() -%}
    {%- set parts = [flags.WHICH or 'unknown'] -%}
    {%- if flags.EMPTY -%}{%- do parts.append('--empty') -%}{%- endif -%}
    {%- if flags.SAMPLE -%}{%- do parts.append('--sample') -%}{%- endif -%}
    {{ return(parts | join(' ')) }}
{%- endmacro %}

{% macro gate_ledger_text(value, length=300) -%}
    {%- if value is none -%}
        {{ return('null') }}
    {%- endif -%}
    {%- set cleaned = (value | string)[:length] | replace('\\', '/') | replace("'", '`')
        | replace('\r', ' ') | replace('\n', ' ') -%}
    {{ return("'" ~ cleaned ~ "'") }}
{%- endmacro %}

{% macro gate_ledger_row(unique_id, resource_type, status, failures=none, depends_on=none, message=none) -%}
    {%- set stamp = run_started_at.strftime('%Y-%m-%d %H:%M:%S.%f') -%}
    {%- set now = modules.datetime.datetime.utcnow().strftime('%Y-%m-%d %H:%M:%S.%f') -%}
    ({{ gate_ledger_text(invocation_id) }}, {{ gate_ledger_text(gate_ledger_command()) }},
        {{ timestamp_literal(stamp) }}, {{ timestamp_literal(now) }},
        {{ gate_ledger_text(unique_id) }}, {{ gate_ledger_text(resource_type) }},
        {{ gate_ledger_text(status) }},
        {{ failures | int if failures is not none else 'null' }},
        {{ gate_ledger_text(depends_on) }}, {{ gate_ledger_text(message) }})
{%- endmacro %}

{% macro gate_ledger_insert(rows) -%}
    insert into {{ gate_ledger_relation() }}
        (invocation_id, command, run_started_at, recorded_at, unique_id, resource_type, status,
         failures, depends_on, message)
    values
    {{ rows | join(',\n    ') }}
{%- endmacro %}

{#- on-run-start, first hook: the ledger, when missing. -#}
{% macro create_gate_ledger() %}
    {%- if not execute -%}
        {{ return('') }}
    {%- endif -%}
    create table if not exists {{ gate_ledger_relation() }} (
        invocation_id {{ dbt.type_string() }},
        command {{ dbt.type_string() }},
        run_started_at {{ gate_ledger_timestamp_type() }},
        recorded_at {{ gate_ledger_timestamp_type() }},
        unique_id {{ dbt.type_string() }},
        resource_type {{ dbt.type_string() }},
        status {{ dbt.type_string() }},
        failures {{ dbt.type_bigint() }},
        depends_on {{ dbt.type_string() }},
        message {{ dbt.type_string() }}
    )
{% endmacro %}

{#- on-run-start, second hook: this invocation started (and may write any model from now on). -#}
{% macro start_gate_ledger() %}
    {%- if not execute -%}
        {{ return('') }}
    {%- endif -%}
    {{ return(gate_ledger_insert([gate_ledger_row('invocation', 'invocation', 'started')])) }}
{% endmacro %}

{#- on-run-end: one row per result (tests and unit tests with the models they read), then
    the `finished` row, in one statement: a ledger never holds half an invocation's end. -#}
{% macro record_gate_ledger(results) %}
    {%- if not execute -%}
        {{ return('') }}
    {%- endif -%}
    {%- set rows = [] -%}
    {%- for result in results if result.node is defined and result.node is not none -%}
        {%- set node = result.node -%}
        {%- set parents = [] -%}
        {%- if node.resource_type in ['test', 'unit_test'] -%}
            {%- for parent in node.depends_on.nodes if parent.startswith('model.') -%}
                {%- do parents.append(parent) -%}
            {%- endfor -%}
        {%- endif -%}
        {%- do rows.append(gate_ledger_row(
            node.unique_id, node.resource_type, result.status | string,
            failures=result.failures if node.resource_type in ['test', 'unit_test'] else none,
            depends_on=(parents | join(',')) if parents else none,
            message=result.message if result.status | string in ['fail', 'warn', 'error'] else none,
        )) -%}
    {%- endfor -%}
    {%- do rows.append(gate_ledger_row('invocation', 'invocation', 'finished')) -%}
    {{ return(gate_ledger_insert(rows)) }}
{% endmacro %}
