{#- Empty-mart gate: fails for every symbol that has bars in `bars` but no row in the mart,
    naming the features' warm-up (features_warmup_seconds, plus `extra_seconds` for what the
    mart adds, e.g. the label horizon) and how many days of history are missing, or, when the
    history covers the warm-up, that an input is missing. A mart that is empty while its bars
    are not passes every per-row gate, so without this one an empty mart would be published.
    `bars` is the bars model's name, looked up in the graph (gate_model_relation), not ref()'d. -#}
{% test rows_past_warmup(model, bars, dataset, interval_seconds, extra_seconds=0, extra_what='') %}
{{ config(tags=['gate']) }}
{%- set bars_relation = gate_model_relation(bars, 'rows_past_warmup') -%}
{%- set window_days = ((var('features_window_seconds') | int) / 86400) | round(2) -%}
{%- set refresh_days = ((var('features_quantile_refresh_seconds') | int) / 86400) | round(2) -%}
{%- set warmup_seconds = features_warmup_seconds() + (extra_seconds | int) -%}
{%- set warmup_days = (warmup_seconds / 86400) | round(2) -%}

with

bar_history as (

    select
        symbol,
        min(open_time) as first_open_time,
        max(open_time) as last_open_time,
        count(*) as bar_count
    from {{ bars_relation }}
    group by symbol

),

mart_symbols as (

    select distinct symbol from {{ model }}

),

missing_rows as (

    select
        bar_history.symbol,
        bar_history.first_open_time,
        bar_history.last_open_time,
        bar_history.bar_count,
        ({{ seconds_between('bar_history.first_open_time', 'bar_history.last_open_time') }}
            + {{ interval_seconds | int }}) / 86400.0 as history_days
    from bar_history
    left join mart_symbols
        on bar_history.symbol = mart_symbols.symbol
    where mart_symbols.symbol is null

),

final as (

    select
        '{{ dataset }}' as dataset,
        symbol,
        {{ utc_date('last_open_time') }} as day,
        cast(bar_count as {{ dbt.type_bigint() }}) as failing_count,
        'no rows although {{ bars }} holds ' || {{ gate_text('round(history_days, 2)') }}
        || ' days of bars (' || {{ gate_text(utc_date('first_open_time')) }} || ' to '
        || {{ gate_text(utc_date('last_open_time')) }} || '); the feature warm-up needs '
        || '{{ warmup_days }} days ({{ window_days }}-day features_window_seconds + '
        || '{{ refresh_days }}-day features_quantile_refresh_seconds{{ extra_what }})'
        || case
            when history_days < {{ warmup_days }}
                then ': ' || {{ gate_text('round(' ~ warmup_days ~ ' - history_days, 2)') }}
                || ' days of history missing (land more: config/ingest.yml days_back)'
            else ': the history covers it, so an input is missing (spot bars past warm-up) or '
                || 'the mart was not rebuilt'
        end as detail
    from missing_rows

)

select * from final
{% endtest %}
