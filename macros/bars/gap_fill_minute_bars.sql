{#- The body of an `int_*_bars_1m_gap_filled` model: the `base_interval` klines of one staging
    model on a dense 1m spine per symbol, from its first to its last bar. A missing minute
    becomes a flat bar at the previous close (open = high = low = close), with zero volumes and
    trades and `is_imputed = true`. Duplicated source minutes are not collapsed here: they fan
    out and fail the unique-key gate. Incremental runs rebuild from `incremental_window_start`,
    carrying the close of the stored minute just before the window into a leading gap. -#}
{% macro gap_fill_minute_bars(klines) -%}
{%- set window_start = incremental_window_start('open_time', 60) -%}

with

klines as (

    select * from {{ klines }}

),

{% if window_start is not none -%}
anchor_minutes as (

    -- The stored minute just before the window: only its close is used, to fill a leading gap.
    select
        symbol,
        open_time,
        close
    from {{ this }}
    where open_time = {{ timestamp_add_seconds(timestamp_literal(window_start), -60) }}

),

{% endif -%}
minute_klines as (

    select
        symbol,
        open_time,
        open,
        high,
        low,
        close,
        volume,
        quote_volume,
        trade_count,
        taker_buy_base_volume,
        taker_buy_quote_volume,
        false as is_anchor
    from klines
    where
        kline_interval = {{ checked_literal(var("base_interval"), '[0-9]{1,3}[smhdwM]', 'base_interval') }}
        and symbol in ({{ symbols_sql_list() }})
        {%- if window_start is not none %}
        and lake_date >= cast({{ timestamp_literal(window_start) }} as date)
        and open_time >= {{ timestamp_literal(window_start) }}
        {%- endif %}

    {%- if window_start is not none %}

    union all

    select
        symbol,
        open_time,
        close as open,
        close as high,
        close as low,
        close,
        null as volume,
        null as quote_volume,
        null as trade_count,
        null as taker_buy_base_volume,
        null as taker_buy_quote_volume,
        true as is_anchor
    from anchor_minutes
    {%- endif %}

),

symbol_bounds as (

    select
        symbol,
        min(open_time) as first_open_time,
        max(open_time) as last_open_time
    from minute_klines
    group by symbol

),

minute_spine as (

    select
        symbol_bounds.symbol,
        spine.open_time
    from symbol_bounds
    {{ timestamp_spine_join('symbol_bounds.first_open_time', 'symbol_bounds.last_open_time', 60, 'open_time') }}

),

klines_on_spine as (

    select
        minute_spine.symbol,
        minute_spine.open_time,
        minute_klines.open,
        minute_klines.high,
        minute_klines.low,
        minute_klines.close,
        minute_klines.volume,
        minute_klines.quote_volume,
        minute_klines.trade_count,
        minute_klines.taker_buy_base_volume,
        minute_klines.taker_buy_quote_volume,
        coalesce(minute_klines.is_anchor, false) as is_anchor,
        minute_klines.open_time is null as is_imputed
    from minute_spine
    left join minute_klines
        on
            minute_spine.symbol = minute_klines.symbol
            and minute_spine.open_time = minute_klines.open_time

),

previous_close_carried as (

    select
        *,
        last_value(close ignore nulls) over (
            partition by symbol
            order by open_time
            rows between unbounded preceding and current row
        ) as carried_close
    from klines_on_spine

),

final as (

    select
        symbol,
        open_time,
        {{ timestamp_add_seconds('open_time', 60) }} as available_at,
        coalesce(open, carried_close) as open,
        coalesce(high, carried_close) as high,
        coalesce(low, carried_close) as low,
        coalesce(close, carried_close) as close,
        coalesce(volume, 0) as volume,
        coalesce(quote_volume, 0) as quote_volume,
        coalesce(trade_count, 0) as trade_count,
        coalesce(taker_buy_base_volume, 0) as taker_buy_base_volume,
        coalesce(taker_buy_quote_volume, 0) as taker_buy_quote_volume,
        is_imputed,
        {{ epoch_seconds('open_time') }} as epoch_s
    from previous_close_carried
    where not is_anchor

)

select * from final
{%- endmacro %}
