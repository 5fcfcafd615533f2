{#- on-run-end: for every gate test that failed or warned, print its failing rows (dataset,
    symbol, day, count, detail) to the dbt log, so a failed `dbt build` says which dataset, which
    day and how many rows. The gate's own compiled query is run again for the few gates that did
    not pass (cheaper than storing every gate's failures on every build). -#}
{% macro report_gate_failures(results) %}
    {%- if not execute -%}
        {{ return('') }}
    {%- endif -%}
    {%- set max_lines = 10 -%}
    {%- for result in results
        if result.node.resource_type == 'test'
        and result.status in ['fail', 'warn']
        and 'gate' in result.node.tags
        and result.node.compiled_code -%}
        {%- set label = 'FAIL' if result.status == 'fail' else 'WARN' -%}
        {%- set rows = run_query(
            'select dataset, symbol, day, failing_count, detail from (' ~ result.node.compiled_code
            ~ ') as gate_rows order by day, symbol, detail limit ' ~ (max_lines + 1)
        ) -%}
        {%- for row in rows.rows -%}
            {%- if loop.index <= max_lines -%}
                {{ log('GATE ' ~ label ~ ' ' ~ result.node.name ~ ': dataset=' ~ row['dataset']
                    ~ ' symbol=' ~ row['symbol'] ~ ' day=' ~ row['day']
                    ~ ' count=' ~ row['failing_count'] ~ ' (' ~ row['detail'] ~ ')', info=true) }}
            {%- else -%}
                {{ log('GATE ' ~ label ~ ' ' ~ result.node.name ~ ': ... more rows (btcfs qa lists them)',
                    info=true) }}
            {%- endif -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ return('') }}
{% endmacro %}
