{#- on-run-end: for every gate test that failed or warned, print its stored failing rows
    (dataset, symbol, day, count, detail) to the dbt log, so a failed `dbt build` says which
    dataset, which day and how many rows without a second query. -#}
{% macro report_gate_failures(results) %}
    {%- if not execute -%}
        {{ return('') }}
    {%- endif -%}
    {%- set max_lines = 10 -%}
    {%- for result in results
        if result.node.resource_type == 'test'
        and result.status in ['fail', 'warn']
        and 'gate' in result.node.tags
        and result.node.relation_name -%}
        {%- set label = 'FAIL' if result.status == 'fail' else 'WARN' -%}
        {%- set rows = run_query(
            'select dataset, symbol, day, failing_count, detail from ' ~ result.node.relation_name
            ~ ' order by day, symbol limit ' ~ (max_lines + 1)
        ) -%}
        {%- for row in rows.rows -%}
            {%- if loop.index <= max_lines -%}
                {{ log('GATE ' ~ label ~ ' ' ~ result.node.name ~ ': dataset=' ~ row['dataset']
                    ~ ' symbol=' ~ row['symbol'] ~ ' day=' ~ row['day']
                    ~ ' count=' ~ row['failing_count'] ~ ' (' ~ row['detail'] ~ ')', info=true) }}
            {%- else -%}
                {{ log('GATE ' ~ label ~ ' ' ~ result.node.name ~ ': ... more rows in '
                    ~ result.node.relation_name, info=true) }}
            {%- endif -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ return('') }}
{% endmacro %}
