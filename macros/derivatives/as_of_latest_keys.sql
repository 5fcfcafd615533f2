{#- The as-of join every slower source uses (ARCHITECTURE.md invariant 2), written as a union
    and a running LAST_VALUE, which DuckDB and BigQuery both run (BigQuery has no ASOF JOIN).

    For every row of `bars` (symbol, open_time, available_at) and every name in `streams`, the
    `key_column` of that stream's latest event in `events` (symbol, stream_name, available_at,
    key_column) whose available_at <= the bar's: `<stream>_key`, NULL before the stream's first
    event. Events sort before bars at equal available_at, so "<=" holds. The caller joins the
    events back on (symbol, stream_name, key) to read their values, and applies its staleness rule
    there; `key_column` must be unique per symbol and stream. -#}
{% macro as_of_latest_keys(bars, events, streams, key_column) -%}
select
    symbol,
    open_time,
    available_at,
    {%- for stream_name in streams %}
    {{ stream_name }}_key{{ "," if not loop.last }}
    {%- endfor %}
from (
    select
        symbol,
        open_time,
        available_at,
        sort_order,
        {%- for stream_name in streams %}
        last_value(case when stream_name = '{{ stream_name }}' then event_key end ignore nulls) over (
            partition by symbol
            order by available_at, sort_order
            rows between unbounded preceding and current row
        ) as {{ stream_name }}_key{{ "," if not loop.last }}
        {%- endfor %}
    from (
        select
            symbol,
            available_at,
            0 as sort_order,
            cast(null as {{ dbt.type_timestamp() | lower }}) as open_time,
            stream_name,
            {{ key_column }} as event_key
        from {{ events }}
        union all
        select
            symbol,
            available_at,
            1 as sort_order,
            open_time,
            cast(null as {{ dbt.type_string() | lower }}) as stream_name,
            cast(null as {{ dbt.type_timestamp() | lower }}) as event_key
        from {{ bars }}
    ) as events_and_bars
) as latest_carried
where sort_order = 1
{%- endmacro %}
