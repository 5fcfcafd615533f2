{#- Warn-level report of the days of a 1m spine allow-listed in `known_exchange_halts`: a real
    exchange halt is shown on every build (and in `btcfs qa`), never silently passed. -#}
{% test known_halts_reported(model, dataset) %}
{{ config(severity='warn', tags=['gate']) }}

with

known_halts as (

    {{ gate_known_halts(dataset) }}

),

per_day as (

    select
        symbol,
        {{ utc_date('open_time') }} as day,
        sum(case when is_imputed then 1 else 0 end) as missing_minutes,
        sum(case when not is_imputed and volume = 0 then 1 else 0 end) as zero_volume_minutes
    from {{ gate_relation(model, 'open_time') }}
    group by symbol, {{ utc_date('open_time') }}

),

final as (

    select
        '{{ dataset }}' as dataset,
        per_day.symbol,
        per_day.day,
        cast(per_day.missing_minutes + per_day.zero_volume_minutes as {{ dbt.type_bigint() }})
            as failing_count,
        'known exchange halt (' || known_halts.reason || '): '
        || {{ gate_text('per_day.missing_minutes') }} || ' missing minutes (allowed '
        || {{ gate_text('known_halts.max_missing_minutes') }} || '), '
        || {{ gate_text('per_day.zero_volume_minutes') }} || ' zero-volume minutes (allowed '
        || {{ gate_text('known_halts.max_zero_volume_minutes') }} || ')' as detail
    from per_day
    inner join known_halts
        on
            per_day.symbol = known_halts.symbol
            and per_day.day = known_halts.day

)

select * from final
{% endtest %}
