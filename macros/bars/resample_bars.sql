{#- The body of a bars mart: 1m gap-filled bars resampled to `seconds`-wide buckets counted from
    the Unix epoch. First open, max high, min low, last close, sums of volumes, trades and taker
    volumes; only whole buckets (every minute present on the spine) are emitted, so the last,
    still-forming bar appears on a later run. `available_at` = open_time + the bar width.
    Incremental runs rebuild every bucket from `incremental_window_start`. -#}
{% macro resample_bars(minute_bars, seconds) -%}
{%- set window_start = incremental_window_start('open_time', seconds) -%}
{%- set minutes_per_bar = (seconds // 60) | int -%}

with

minute_bars as (

    select * from {{ minute_bars }}
    {%- if window_start is not none %}
    where open_time >= {{ timestamp_literal(window_start) }}
    {%- endif %}

),

minutes_bucketed as (

    select
        *,
        {{ time_bucket('open_time', seconds) }} as bar_open_time
    from minute_bars

),

bars_aggregated as (

    select
        symbol,
        bar_open_time as open_time,
        max(case when open_time = bar_open_time then open end) as open,
        max(high) as high,
        min(low) as low,
        max(
            case
                when open_time = {{ timestamp_add_seconds('bar_open_time', seconds - 60) }}
                    then close
            end
        ) as close,
        sum(volume) as volume,
        sum(quote_volume) as quote_volume,
        sum(trade_count) as trade_count,
        sum(taker_buy_base_volume) as taker_buy_base_volume,
        sum(taker_buy_quote_volume) as taker_buy_quote_volume,
        sum(case when is_imputed then 1 else 0 end) as imputed_minutes,
        sum(case when volume = 0 then 1 else 0 end) as zero_volume_minutes,
        count(*) as minute_count
    from minutes_bucketed
    group by symbol, bar_open_time

),

final as (

    select
        symbol,
        open_time,
        {{ timestamp_add_seconds('open_time', seconds) }} as available_at,
        open,
        high,
        low,
        close,
        volume,
        quote_volume,
        cast(trade_count as {{ dbt.type_bigint() }}) as trade_count,
        taker_buy_base_volume,
        taker_buy_quote_volume,
        cast(imputed_minutes as {{ dbt.type_int() }}) as imputed_minutes,
        imputed_minutes > 0 as is_imputed,
        cast(zero_volume_minutes as {{ dbt.type_int() }}) as zero_volume_minutes,
        {{ epoch_seconds('open_time') }} as epoch_s
    from bars_aggregated
    where minute_count = {{ minutes_per_bar }}

)

select * from final
{%- endmacro %}
