{#- Quarantined lake rows per dataset, symbol and day: warn above 0, error above the var
    quarantine_error_rows (on the worst day). -#}
{% test quarantined_rows_within_threshold(model) %}
{{ config(
    tags=['gate'],
    fail_calc='coalesce(max(failing_count), 0)',
    warn_if='>0',
    error_if='>' ~ var('quarantine_error_rows'),
) }}

with

per_day as (

    select
        dataset,
        symbol,
        lake_date as day,
        count(*) as quarantined_rows,
        min(reason) as first_reason
    from {{ model }}
    group by dataset, symbol, lake_date

),

final as (

    select
        dataset,
        symbol,
        day,
        cast(quarantined_rows as {{ dbt.type_bigint() }}) as failing_count,
        {{ gate_text('quarantined_rows') }} || ' quarantined rows (e.g. ' || first_reason
        || '), error above {{ checked_number(var("quarantine_error_rows"), "quarantine_error_rows") }} a day' as detail
    from per_day

)

select * from final
{% endtest %}
