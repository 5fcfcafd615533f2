{#- A SELECT of exact quantiles per group: for every column c of `columns` and every
    (suffix, fraction) of `fractions`, the column c_<suffix> = the quantile of c over the rows of
    the group (linear interpolation between closest ranks: PERCENTILE_CONT's definition on both
    engines; NULLs ignored), one row per distinct `group_by`.

    DuckDB has it as an aggregate (quantile_cont). BigQuery's only exact quantile, PERCENTILE_CONT,
    is analytic (no GROUP BY, no ORDER BY, no frame: there is no sliding percentile there), so its
    branch computes it over a partition per group and collapses the partition with a GROUP BY. -#}
{% macro grouped_quantiles(relation, group_by, columns, fractions) -%}
    {{ return(adapter.dispatch('grouped_quantiles', 'btcfs')(relation, group_by, columns, fractions)) }}
{%- endmacro %}

{% macro default__grouped_quantiles(relation, group_by, columns, fractions) -%}
    {#- Standard SQL's ordered-set aggregate (Postgres, Snowflake, ...). -#}
    select
        {%- for column in group_by %}
        {{ column }},
        {%- endfor %}
        {%- for column in columns %}
        {%- set outer_loop = loop %}
        {%- for suffix, fraction in fractions.items() %}
        percentile_cont({{ fraction }}) within group (order by {{ column }})
            as {{ column }}_{{ suffix }}{{ "," if not (outer_loop.last and loop.last) }}
        {%- endfor %}
        {%- endfor %}
    from {{ relation }}
    group by {{ group_by | join(', ') }}
{%- endmacro %}

{% macro duckdb__grouped_quantiles(relation, group_by, columns, fractions) -%}
    select
        {%- for column in group_by %}
        {{ column }},
        {%- endfor %}
        {%- for column in columns %}
        {%- set outer_loop = loop %}
        {%- for suffix, fraction in fractions.items() %}
        quantile_cont({{ column }}, {{ fraction }}) as {{ column }}_{{ suffix }}{{ "," if not (outer_loop.last and loop.last) }}
        {%- endfor %}
        {%- endfor %}
    from {{ relation }}
    group by {{ group_by | join(', ') }}
{%- endmacro %}

{% macro bigquery__grouped_quantiles(relation, group_by, columns, fractions) -%}
    select
        {%- for column in group_by %}
        {{ column }},
        {%- endfor %}
        {%- for column in columns %}
        {%- set outer_loop = loop %}
        {%- for suffix, fraction in fractions.items() %}
        any_value({{ column }}_{{ suffix }}) as {{ column }}_{{ suffix }}{{ "," if not (outer_loop.last and loop.last) }}
        {%- endfor %}
        {%- endfor %}
    from (
        select
            {%- for column in group_by %}
            {{ column }},
            {%- endfor %}
            {%- for column in columns %}
            {%- set outer_loop = loop %}
            {%- for suffix, fraction in fractions.items() %}
            percentile_cont({{ column }}, {{ fraction }})
                over (partition by {{ group_by | join(', ') }}) as {{ column }}_{{ suffix }}{{ "," if not (outer_loop.last and loop.last) }}
            {%- endfor %}
            {%- endfor %}
        from {{ relation }}
    ) as quantiles_per_row
    group by {{ group_by | join(', ') }}
{%- endmacro %}
