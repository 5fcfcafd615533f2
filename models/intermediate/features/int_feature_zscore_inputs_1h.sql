{{
    config(
        materialized='incremental',
        unique_key=['symbol', 'open_time'],
        on_schema_change='fail',
    )
}}

{#- The five inputs features_1h publishes as winsorised z-scores, one row per 1-hour bar:
    realised volatility (from the hour's twelve 5-minute returns) and volume (the spot set),
    the open-interest change, the funding rate and the perp-minus-spot taker flow (the
    derivatives set). int_feature_zscore_params takes their 30-day bounds and moments. -#}
{%- set output_start = incremental_window_start('open_time', 3600) -%}
{%- set read_start = shift_timestamp_text(output_start, -3 * 3600) -%}

with

bars as (
    select * from {{ ref('bars_1h') }}
    where {{ at_or_after('open_time', read_start) }}
),

five_minute_bars as (
    select * from {{ ref('bars_5m') }}
    where {{ at_or_after('open_time', shift_timestamp_text(read_start, -300)) }}
),

perp_bars as (
    select * from {{ ref('perp_bars_1h') }}
    where {{ at_or_after('open_time', read_start) }}
),

funding as (
    select * from {{ ref('int_funding_as_of_bars_1h') }}
    where {{ at_or_after('open_time', read_start) }}
),

open_interest as (
    select * from {{ ref('int_open_interest_as_of_bars_1h') }}
    where {{ at_or_after('open_time', read_start) }}
),

five_minute_returns as (
    select
        symbol,
        epoch_s - mod(epoch_s, 3600) as hour_epoch_s,
        ln(
            cast(close as {{ type_double() }})
            / cast(lag(close, 1) over (partition by symbol order by open_time) as {{ type_double() }})
        ) as five_minute_return
    from five_minute_bars
),

realised_volatility as (
    -- from all twelve 5-minute returns of the hour, or none
    select
        symbol,
        hour_epoch_s,
        case
            when count(five_minute_return) = 12
                then sqrt(sum(five_minute_return * five_minute_return))
        end as rv_5m
    from five_minute_returns
    group by symbol, hour_epoch_s
),

sources_joined as (
    select
        bars.symbol,
        bars.open_time,
        bars.epoch_s,
        realised_volatility.rv_5m,
        cast(bars.volume as {{ type_double() }}) as volume,
        cast(bars.taker_buy_base_volume as {{ type_double() }}) as taker_buy_base_volume,
        cast(perp_bars.volume as {{ type_double() }}) as perp_volume,
        cast(perp_bars.taker_buy_base_volume as {{ type_double() }}) as perp_taker_buy_base_volume,
        cast(funding.funding_rate as {{ type_double() }}) as funding_rate,
        cast(open_interest.sum_open_interest as {{ type_double() }}) as open_interest
    from bars
    left join realised_volatility
        on
            bars.symbol = realised_volatility.symbol
            and bars.epoch_s = realised_volatility.hour_epoch_s
    left join perp_bars
        on
            bars.symbol = perp_bars.symbol
            and bars.open_time = perp_bars.open_time
    left join funding
        on
            bars.symbol = funding.symbol
            and bars.open_time = funding.open_time
    left join open_interest
        on
            bars.symbol = open_interest.symbol
            and bars.open_time = open_interest.open_time
),

steps_computed as (
    select
        symbol,
        open_time,
        epoch_s,
        rv_5m,
        volume,
        ln(open_interest / lag(open_interest, 1) over (partition by symbol order by open_time))
            as oi_change_1h,
        funding_rate,
        -- signed taker flow (buys minus sells, base asset) of the perp minus the spot's
        (2 * perp_taker_buy_base_volume - perp_volume) - (2 * taker_buy_base_volume - volume)
            as cvd_diff_60m
    from sources_joined
),

final as (
    select * from steps_computed
    where {{ at_or_after('open_time', output_start) }}
)

select * from final
