{#- Exact quantile (linear interpolation between closest ranks, the R-7 / PERCENTILE_CONT
    definition on both engines) of `expression` over a whole partition, as an analytic
    function: every row of the partition gets the same value.

    This is the only portable exact quantile: BigQuery's PERCENTILE_CONT is analytic-only and
    accepts no ORDER BY and no frame (so there is no sliding percentile there), and its only
    quantile aggregate, APPROX_QUANTILES, is approximate. Models therefore compute quantiles over
    a partition that holds exactly the window's rows (see features_5m, `quantile_windows`) and
    then collapse it with a GROUP BY. NULLs are ignored on both engines. -#}
{% macro partition_quantile_cont(expression, fraction, partition_by) -%}
    {{ return(adapter.dispatch('partition_quantile_cont', 'btcfs')(expression, fraction, partition_by)) }}
{%- endmacro %}

{% macro default__partition_quantile_cont(expression, fraction, partition_by) -%}
    percentile_cont({{ fraction }}) within group (order by {{ expression }}) over (partition by {{ partition_by }})
{%- endmacro %}

{% macro duckdb__partition_quantile_cont(expression, fraction, partition_by) -%}
    quantile_cont({{ expression }}, {{ fraction }}) over (partition by {{ partition_by }})
{%- endmacro %}

{% macro bigquery__partition_quantile_cont(expression, fraction, partition_by) -%}
    percentile_cont({{ expression }}, {{ fraction }}) over (partition by {{ partition_by }})
{%- endmacro %}
