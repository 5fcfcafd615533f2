{#- Root-project override of dbt's is_incremental(): false everywhere when the var
    `disable_incremental` is true (a full rebuild without --full-refresh, and the offline
    BigQuery compile, which cannot ask the warehouse whether a relation exists). -#}
{% macro is_incremental() -%}
    {%- if var('disable_incremental', false) | string | lower in ['true', '1', 'yes'] -%}
        {{ return(false) }}
    {%- endif -%}
    {{ return(dbt.is_incremental()) }}
{%- endmacro %}
