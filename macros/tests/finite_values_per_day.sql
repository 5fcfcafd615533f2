{#- The no-NULL/NaN/inf gate of the published features (the other feature and label gates reuse
    macros/tests/). Same shape as every gate: one row per failing (dataset, symbol, day) with
    failing_count and a detail naming the columns and their feature sets, stored for
    report_gate_failures/btcfs qa.

    Every column of the relation is checked, read from the warehouse at run time (a column added
    to the mart is covered without editing the test), by its feature set (`meta.feature_set` of
    its declaration: the model's own YAML, else features_5m's, the one feature contract):
    a `vendors` column may be NULL but never NaN or inf; a `derivatives` column must hold a
    finite value on every row that claims the set (`is_derivatives_complete`); every other
    column on every row. `except_columns` names columns documented as allowed to be NULL. With
    the var gate_window_days > 0 only the model's last days are checked, as in every gate. -#}
{% test finite_values_per_day(model, time_column, dataset, except_columns=[]) %}
{{ config(store_failures=true, tags=['gate']) }}

{%- set excluded = except_columns | map('lower') | list -%}
{%- set sets = feature_sets_of(model) -%}
{%- set checks = [] -%}
{%- if execute -%}
    {%- for column in adapter.get_columns_in_relation(model) -%}
        {%- set name = column.name | lower -%}
        {%- set feature_set = sets.get(name) -%}
        {%- set label = column.name ~ (' [' ~ feature_set ~ ']' if feature_set else '') -%}
        {%- set missing = '(' ~ column.name ~ ' is null' ~ (' or not ' ~ is_finite(column.name) if column.is_float() else '') ~ ')' -%}
        {%- if feature_set == 'vendors' -%}
            {%- if column.is_float() -%}
                {%- do checks.append((label, '(' ~ column.name ~ ' is not null and not ' ~ is_finite(column.name) ~ ')')) -%}
            {%- endif -%}
        {%- elif name in excluded -%}
        {%- elif feature_set and feature_set != 'spot' -%}
            {%- do checks.append((label, '(coalesce(is_' ~ feature_set ~ '_complete, false) and ' ~ missing ~ ')')) -%}
        {%- else -%}
            {%- do checks.append((label, missing)) -%}
        {%- endif -%}
    {%- endfor -%}
{%- endif -%}

with

per_day as (

    select
        symbol,
        {{ utc_date(time_column) }} as day,
        {%- for name, bad in checks %}
        sum(case when {{ bad }} then 1 else 0 end) as bad_{{ loop.index }},
        {%- endfor %}
        sum(
            case
                when false
                {%- for name, bad in checks %}
                    or {{ bad }}
                {%- endfor %}
                    then 1
                else 0
            end
        ) as bad_rows
    from {{ gate_relation(model, time_column) }}
    group by symbol, {{ utc_date(time_column) }}

),

final as (

    select
        '{{ dataset }}' as dataset,
        symbol,
        day,
        cast(bad_rows as {{ dbt.type_bigint() }}) as failing_count,
        {{ gate_text('bad_rows') }} || ' rows with NULL, NaN or inf in:'
        {%- for name, bad in checks %}
        || case when bad_{{ loop.index }} > 0 then ' {{ name }}' else '' end
        {%- endfor %} as detail
    from per_day
    where bad_rows > 0

)

select * from final
{% endtest %}


{#- {column name (lower case): its feature set} for the columns of `model` (a relation) that
    declare one in `meta.feature_set`: the model's own YAML first, then features_5m's (the one
    feature contract, which training_set_5m and latest_features carry over). -#}
{% macro feature_sets_of(model) -%}
    {%- set found = {} -%}
    {%- if execute -%}
        {%- set contract = graph.nodes.get('model.' ~ project_name ~ '.features_5m') -%}
        {%- set nodes = [] -%}
        {%- for node in graph.nodes.values() -%}
            {%- if node.resource_type == 'model' and (node.alias or node.name) | lower == model.identifier | lower -%}
                {%- do nodes.append(node) -%}
            {%- endif -%}
        {%- endfor -%}
        {%- if contract is not none -%}
            {%- do nodes.append(contract) -%}
        {%- endif -%}
        {%- for node in nodes -%}
            {%- for name, column in node.columns.items() -%}
                {%- set meta = (column.get('config') or {}).get('meta') or column.get('meta') or {} -%}
                {%- if meta.get('feature_set') and name | lower not in found -%}
                    {%- do found.update({name | lower: meta.get('feature_set')}) -%}
                {%- endif -%}
            {%- endfor -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(found) }}
{%- endmacro %}

{#- Lower-case names of the columns of `model` in the optional `vendors` feature set. -#}
{% macro optional_columns(model) -%}
    {%- set names = [] -%}
    {%- for name, feature_set in feature_sets_of(model).items() -%}
        {%- if feature_set == 'vendors' -%}
            {%- do names.append(name) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(names) }}
{%- endmacro %}

{#- Coverage gate of optional features (warn): on every day after a column's first non-NULL
    value (its own warm-up, e.g. a vendor landed later than Binance), at least `min_share` of
    the day's rows hold it. A vendor never landed is not reported here (its features are NULL
    throughout, which the docs say). One row per (day, column) below the share. -#}
{% test optional_coverage_per_day(model, time_column, dataset, min_share) %}
{{ config(store_failures=true, tags=['gate'], severity='warn') }}
{%- set optional = optional_columns(model) -%}

with

rows_in_scope as (

    select * from {{ gate_relation(model, time_column) }}

),

{%- for column in optional %}

first_{{ loop.index }} as (

    select
        symbol,
        min({{ time_column }}) as first_at
    from rows_in_scope
    where {{ column }} is not null
    group by symbol

),
{%- endfor %}

per_day as (

    {%- for column in optional %}
    select
        rows_in_scope.symbol,
        {{ utc_date('rows_in_scope.' ~ time_column) }} as day,
        '{{ column }}' as column_name,
        count(*) as day_rows,
        count(rows_in_scope.{{ column }}) as present_rows
    from rows_in_scope
    inner join first_{{ loop.index }}
        on
            rows_in_scope.symbol = first_{{ loop.index }}.symbol
            and {{ utc_date('rows_in_scope.' ~ time_column) }} > {{ utc_date('first_' ~ loop.index ~ '.first_at') }}
    group by rows_in_scope.symbol, {{ utc_date('rows_in_scope.' ~ time_column) }}
    {% if not loop.last %}union all{% endif %}
    {%- else %}
    select
        cast(null as {{ dbt.type_string() }}) as symbol,
        cast(null as date) as day,
        cast(null as {{ dbt.type_string() }}) as column_name,
        0 as day_rows,
        0 as present_rows
    where false
    {%- endfor %}

),

final as (

    select
        '{{ dataset }}' as dataset,
        symbol,
        day,
        cast(day_rows - present_rows as {{ dbt.type_bigint() }}) as failing_count,
        column_name || ': ' || {{ gate_text('present_rows') }} || ' of ' || {{ gate_text('day_rows') }}
        || ' rows hold it (' || {{ gate_percent('present_rows', 'day_rows') }}
        || ' %), threshold {{ (min_share | float) * 100 }} %' as detail
    from per_day
    where present_rows < {{ min_share }} * day_rows

)

select * from final
{% endtest %}

{#- Synthetic guard (error): no row of `model` may be built from a vendor row flagged
    `is_synthetic` (the replay server's market) where that is forbidden: the var
    `forbid_synthetic_inputs` when set, else on target prod only. Elsewhere (dev, demo) it
    passes. One row per (symbol, day) with synthetic inputs. -#}
{% test no_synthetic_inputs(model, flag_column, time_column, dataset) %}
{{ config(store_failures=true, tags=['gate']) }}
{%- set forbid = var('forbid_synthetic_inputs', none) -%}
{%- if forbid is none -%}
    {%- set forbid = target.name == 'prod' -%}
{%- elif forbid is string -%}
    {%- set forbid = forbid | lower in ('true', '1', 'yes') -%}
{%- endif %}

with

per_day as (

    select
        symbol,
        {{ utc_date(time_column) }} as day,
        count(*) as synthetic_rows
    from {{ gate_relation(model, time_column) }}
    where {{ "true" if forbid else "false" }} and {{ flag_column }}
    group by symbol, {{ utc_date(time_column) }}

),

final as (

    select
        '{{ dataset }}' as dataset,
        symbol,
        day,
        cast(synthetic_rows as {{ dbt.type_bigint() }}) as failing_count,
        {{ gate_text('synthetic_rows') }} || ' rows built from synthetic vendor data (is_synthetic) on target {{ target.name }}' as detail
    from per_day

)

select * from final
{% endtest %}
