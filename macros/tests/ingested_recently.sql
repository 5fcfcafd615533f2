{#- Lake freshness inside `dbt build` (warn): the newest ingested_at of a non-empty dataset is
    at most freshness_warn_hours old. (`dbt source freshness` checks the same on the sources.) -#}
{% test ingested_recently(model, dataset, column_name='ingested_at') %}
{{ config(severity='warn', tags=['gate']) }}

with

newest as (

    select
        symbol,
        max({{ column_name }}) as newest_ingested_at
    from {{ model }}
    group by symbol

),

aged as (

    select
        symbol,
        newest_ingested_at,
        cast(
            floor({{ seconds_between('newest_ingested_at', dbt.current_timestamp()) }} / 3600)
            as {{ dbt.type_bigint() }}
        ) as age_hours
    from newest

),

final as (

    select
        '{{ dataset }}' as dataset,
        symbol,
        {{ utc_date('newest_ingested_at') }} as day,
        age_hours as failing_count,
        'newest row landed ' || {{ gate_text('age_hours') }}
        || ' hours ago, warn above {{ checked_number(var("freshness_warn_hours"), "freshness_warn_hours") }}' as detail
    from aged
    where age_hours >= {{ checked_number(var('freshness_warn_hours'), 'freshness_warn_hours') }}

)

select * from final
{% endtest %}
