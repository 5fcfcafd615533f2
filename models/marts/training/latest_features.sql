{#-
    The newest published feature row per symbol and bar interval (5m, 1h): what the API serves.
    Published rows are complete (past warm-up, every source present), so the newest row is the
    newest complete one; a source that is late holds it back rather than serving a partial row.
-#}

{{ config(materialized='table') }}

with

features_5m as (
    select * from {{ ref('features_5m') }}
),

features_1h as (
    select * from {{ ref('features_1h') }}
),

features_unioned as (
    select
        {%- for column in feature_columns() %}
        {{ column }},
        {%- endfor %}
        '5m' as bar_interval
    from features_5m
    union all
    select
        {%- for column in feature_columns() %}
        {{ column }},
        {%- endfor %}
        '1h' as bar_interval
    from features_1h
),

newest_rows as (
    select
        symbol,
        bar_interval,
        max(open_time) as open_time
    from features_unioned
    group by symbol, bar_interval
),

final as (
    select
        {%- for column in feature_columns() %}
        features_unioned.{{ column }},
        {%- endfor %}
        features_unioned.bar_interval
    from features_unioned
    inner join newest_rows
        on
            features_unioned.symbol = newest_rows.symbol
            and features_unioned.bar_interval = newest_rows.bar_interval
            and features_unioned.open_time = newest_rows.open_time
)

select * from final
