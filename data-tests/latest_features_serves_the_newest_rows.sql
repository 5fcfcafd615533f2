{#- latest_features is what the API serves as "now": for each symbol and bar interval it must
    hold exactly the newest row of its features mart (features_5m, features_1h), no older one,
    none missing. One row per (symbol, interval) where it does not. -#}

{{ config(tags=['gate', 'training']) }}

with

newest as (
    select
        symbol,
        '5m' as bar_interval,
        max(open_time) as open_time
    from {{ ref('features_5m') }}
    group by symbol
    union all
    select
        symbol,
        '1h' as bar_interval,
        max(open_time) as open_time
    from {{ ref('features_1h') }}
    group by symbol
),

served as (
    select
        symbol,
        bar_interval,
        count(*) as served_rows,
        max(open_time) as open_time
    from {{ ref('latest_features') }}
    group by symbol, bar_interval
),

mismatched as (
    select
        coalesce(newest.symbol, served.symbol) as symbol,
        coalesce(newest.bar_interval, served.bar_interval) as bar_interval,
        coalesce(newest.open_time, served.open_time) as open_time,
        coalesce(served.served_rows, 0) as served_rows,
        newest.open_time is null as orphaned,
        served.open_time is null as missing
    from newest
    full outer join served
        on newest.symbol = served.symbol and newest.bar_interval = served.bar_interval
    where
        newest.open_time is null
        or served.open_time is null
        or served.open_time != newest.open_time
        or served.served_rows != 1
)

{#- The gate shape every QA gate answers in (dataset, symbol, day, failing_count, detail). -#}
select
    'latest_features' as dataset,
    symbol,
    {{ utc_date('open_time') }} as day,
    cast(1 as {{ dbt.type_bigint() }}) as failing_count,
    bar_interval || case
        when missing then ': no row served'
        when orphaned then ': a row served for a symbol the mart does not have'
        else ': not the newest row (' || {{ gate_text('served_rows') }} || ' served)'
    end as detail
from mismatched
