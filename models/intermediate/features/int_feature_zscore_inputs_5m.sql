{{
    config(
        materialized='incremental',
        unique_key=['symbol', 'open_time'],
        on_schema_change='fail',
    )
}}

{#- The five inputs features_5m publishes as winsorised z-scores, one row per 5-minute bar:
    realised volatility and volume (the spot set), the open-interest change, the funding rate
    and the perp-minus-spot taker flow (the derivatives set). NULL where an input's source has
    no row at the bar. int_feature_zscore_params takes their 30-day bounds and moments. -#}
{%- set output_start = incremental_window_start('open_time', 300) -%}
{#- the inputs' longest look-back is an hour (12 bars); two leave a margin -#}
{%- set read_start = shift_timestamp_text(output_start, -2 * 3600) -%}

with

bars as (
    select * from {{ ref('bars_5m') }}
    where {{ at_or_after('open_time', read_start) }}
),

perp_bars as (
    select * from {{ ref('perp_bars_5m') }}
    where {{ at_or_after('open_time', read_start) }}
),

funding as (
    select * from {{ ref('int_funding_as_of_bars_5m') }}
    where {{ at_or_after('open_time', read_start) }}
),

open_interest as (
    select * from {{ ref('int_open_interest_as_of_bars_5m') }}
    where {{ at_or_after('open_time', read_start) }}
),

sources_joined as (
    select
        bars.symbol,
        bars.open_time,
        bars.epoch_s,
        cast(bars.close as {{ type_double() }}) as close,
        cast(bars.volume as {{ type_double() }}) as volume,
        cast(bars.taker_buy_base_volume as {{ type_double() }}) as taker_buy_base_volume,
        cast(perp_bars.volume as {{ type_double() }}) as perp_volume,
        cast(perp_bars.taker_buy_base_volume as {{ type_double() }}) as perp_taker_buy_base_volume,
        cast(funding.funding_rate as {{ type_double() }}) as funding_rate,
        cast(open_interest.sum_open_interest as {{ type_double() }}) as open_interest,
        row_number() over (partition by bars.symbol order by bars.open_time) as bar_number
    from bars
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
        *,
        ln(close / lag(close, 1) over (partition by symbol order by open_time)) as bar_return,
        ln(open_interest / lag(open_interest, 12) over (partition by symbol order by open_time))
            as oi_change_1h,
        -- signed taker flow (buys minus sells, base asset): one bar's step of each CVD
        (2 * perp_taker_buy_base_volume - perp_volume) - (2 * taker_buy_base_volume - volume)
            as cvd_diff_step
    from sources_joined
),

windows_computed as (
    select
        symbol,
        open_time,
        epoch_s,
        sqrt({{ rolling_aggregate('sum', 'bar_return * bar_return', 12, 'bar_number > 12') }})
            as rv_5m,
        volume,
        oi_change_1h,
        funding_rate,
        {{ rolling_aggregate('sum', 'cvd_diff_step', 12) }} as cvd_diff_60m
    from steps_computed
),

final as (
    select * from windows_computed
    where {{ at_or_after('open_time', output_start) }}
)

select * from final
