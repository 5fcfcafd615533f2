{#- The body of an `int_daily_series_as_of_bars_*` model: for every bar, each daily series'
    latest state (int_daily_series_vintages_resolved) whose state_at <= the bar's available_at,
    NULL once its latest observation's day ended more than `daily_series_max_age_days` ago.
    Macro series (FRED, Alpha Vantage) apply to every symbol, on-chain ones to the symbols of
    their CryptoQuant exchange (var vendor_symbols).
    Incremental runs rebuild the bars from `vendor_window_start` (the day of the Binance as-of
    window, moved back `vendor_late_days`: a vintage landed up to that late is still applied
    to every bar at or after its available_at). The states are read whole (a few thousand rows a
    year), so no state a rebuilt bar can see is left out. -#}
{% macro daily_series_as_of_bars(bars) -%}
{%- set window_start = vendor_window_start() -%}
{#- stream_name name: (vendor, series id) -#}
{%- set streams = {
    'dgs10': ('fred', 'DGS10'),
    'dtwexbgs': ('fred', 'DTWEXBGS'),
    'vixcls': ('fred', 'VIXCLS'),
    'spy': ('alphavantage', 'SPY'),
    'uup': ('alphavantage', 'UUP'),
    'cq_netflow': ('cryptoquant', 'netflow_total'),
    'cq_reserve': ('cryptoquant', 'reserve'),
    'cq_whale_ratio': ('cryptoquant', 'whale_ratio'),
} -%}
{%- set max_age_days = var('daily_series_max_age_days') -%}
{#- Staleness is applied after the (equality) joins: an inequality in ON makes DuckDB use a
    nested-loop join. -#}
{%- set fresh = {} -%}
{%- for stream_name, (vendor, series) in streams.items() -%}
    {%- do fresh.update({stream_name: '(bars.available_epoch_s - (' ~ stream_name ~ '.observation_day + 1) * 86400 <= '
        ~ (max_age_days.get(series, max_age_days[vendor]) | int) ~ ' * 86400)'}) -%}
{%- endfor -%}

with

bars as (
    select
        symbol,
        open_time,
        available_at,
        {{ epoch_seconds('available_at') }} as available_epoch_s
    from {{ bars }}
    {%- if window_start is not none %}
    where open_time >= {{ timestamp_literal(window_start) }}
    {%- endif %}
),

bar_symbols as (
    select distinct symbol from bars
),

exchange_symbols as (
    {{ vendor_symbol_pairs('cryptoquant') }}
),

states as (
    select * from {{ ref('int_daily_series_vintages_resolved') }}
),

state_events as (
    select
        bar_symbols.symbol,
        case
            {%- for stream_name, (vendor, series) in streams.items() %}
            when states.vendor = '{{ vendor }}' and states.series = '{{ series }}' then '{{ stream_name }}'
            {%- endfor %}
        end as stream_name,
        states.state_at as available_at,
        states.*
    from states
    inner join bar_symbols
        on states.scope = ''
    union all
    select
        exchange_symbols.symbol,
        case
            {%- for stream_name, (vendor, series) in streams.items() %}
            when states.vendor = '{{ vendor }}' and states.series = '{{ series }}' then '{{ stream_name }}'
            {%- endfor %}
        end as stream_name,
        states.state_at as available_at,
        states.*
    from states
    inner join exchange_symbols
        on states.scope = exchange_symbols.vendor_symbol
),

latest_keys as (
    {{ as_of_latest_keys('bars', 'state_events', streams.keys() | list, 'state_at') | indent(4) }}
),

final as (
    select
        latest_keys.symbol,
        latest_keys.open_time,
        latest_keys.available_at,
        case when {{ fresh['dgs10'] }} then 100 * dgs10.change_1 end as dgs10_change_1d_bps,
        case when {{ fresh['dtwexbgs'] }} then dtwexbgs.ln_change_5 end as dtwexbgs_ln_change_5d,
        case when {{ fresh['vixcls'] }} then vixcls.zscore end as vix_level_z,
        case when {{ fresh['spy'] }} then spy.ln_change_1 end as spy_ret_1d,
        case when {{ fresh['uup'] }} then uup.ln_change_1 end as uup_ret_1d,
        case when {{ fresh['cq_netflow'] }} then cq_netflow.zscore end as cq_netflow_z,
        case when {{ fresh['cq_reserve'] }} then cq_reserve.ln_change_7 end as cq_reserve_ln_change_7d,
        case when {{ fresh['cq_whale_ratio'] }} then cq_whale_ratio.zscore end as cq_whale_ratio_z,
        (
            false
            {%- for stream_name in streams %}
            or coalesce({{ fresh[stream_name] }} and {{ stream_name }}.has_synthetic_input, false)
            {%- endfor %}
        ) as has_synthetic_input
    from latest_keys
    inner join bars
        on
            latest_keys.symbol = bars.symbol
            and latest_keys.open_time = bars.open_time
    {%- for stream_name, (vendor, series) in streams.items() %}
    left join state_events as {{ stream_name }}
        on
            latest_keys.symbol = {{ stream_name }}.symbol
            and {{ stream_name }}.stream_name = '{{ stream_name }}'
            and latest_keys.{{ stream_name }}_key = {{ stream_name }}.state_at
    {%- endfor %}
)

select * from final
{%- endmacro %}
