{#- A per-day share gate: sum(numerator) / sum(denominator) over each symbol's UTC day must not
    exceed max_share. Used for the gap ratio (missing minutes), zero-volume minutes and the
    imputed share. Days listed in the var `known_exchange_halts` for `dataset` pass while the
    numerator stays within the listed `halt_budget_column` (they are reported by the warn-level
    `known_halts_reported` test instead); set the var allow_known_halts=false to fail them too. -#}
{% test share_within_threshold_per_day(model, dataset, time_column, numerator, denominator, max_share, what, halt_budget_column=none) %}
{{ config(tags=['gate']) }}

with

per_day as (

    select
        symbol,
        {{ utc_date(time_column) }} as day,
        sum({{ numerator }}) as affected_units,
        sum({{ denominator }}) as total_units
    from {{ gate_relation(model, time_column) }}
    group by symbol, {{ utc_date(time_column) }}

),

{% if halt_budget_column is not none and var('allow_known_halts') | string | lower in ['true', '1', 'yes'] -%}
known_halts as (

    {{ gate_known_halts(dataset) }}

),

{% endif -%}
over_threshold as (

    select per_day.*
    from per_day
    {%- if halt_budget_column is not none and var('allow_known_halts') | string | lower in ['true', '1', 'yes'] %}
    left join known_halts
        on
            per_day.symbol = known_halts.symbol
            and per_day.day = known_halts.day
    where
        per_day.affected_units > {{ max_share }} * per_day.total_units
        and not coalesce(per_day.affected_units <= known_halts.{{ halt_budget_column }}, false)
    {%- else %}
    where per_day.affected_units > {{ max_share }} * per_day.total_units
    {%- endif %}

),

final as (

    select
        '{{ dataset }}' as dataset,
        symbol,
        day,
        cast(affected_units as {{ dbt.type_bigint() }}) as failing_count,
        {{ gate_text('affected_units') }} || ' of ' || {{ gate_text('total_units') }}
        || ' {{ what }} (' || {{ gate_percent('affected_units', 'total_units') }}
        || ' %), threshold {{ (max_share * 100) | round(2) }} %' as detail
    from over_threshold

)

select * from final
{% endtest %}
