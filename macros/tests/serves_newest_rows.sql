{#- A serving mart (latest_features) holds, for each symbol and bar interval, exactly the newest
    row of that interval's features mart (`marts`: interval -> model name), no older one, none
    missing. The features marts are looked up in the graph (gate_model_relation), not ref()'d,
    so the gate runs with the serving mart only. One gate row per (symbol, interval) where it
    does not. -#}
{% test serves_newest_rows(model, marts, dataset) %}
{{ config(tags=['gate']) }}

with

newest as (
    {%- for interval, mart in marts.items() %}
    select
        symbol,
        '{{ interval }}' as bar_interval,
        max(open_time) as open_time
    from {{ gate_model_relation(mart, 'serves_newest_rows') }}
    group by symbol
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
),

served as (
    select
        symbol,
        bar_interval,
        count(*) as served_rows,
        max(open_time) as open_time
    from {{ model }}
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
    '{{ dataset }}' as dataset,
    symbol,
    {{ utc_date('open_time') }} as day,
    cast(1 as {{ dbt.type_bigint() }}) as failing_count,
    bar_interval || case
        when missing then ': no row served'
        when orphaned then ': a row served for a symbol the mart does not have'
        else ': not the newest row (' || {{ gate_text('served_rows') }} || ' served)'
    end as detail
from mismatched
{% endtest %}
