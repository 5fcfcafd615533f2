{{
    config(
        materialized='incremental',
        unique_key=['symbol', 'open_time'],
        on_schema_change='fail',
    )
}}

{#- Causal features of 5-minute bars in three sets (formulas, sets and point-in-time rules per
    column in _features__models.yml):

    spot         from spot klines alone: returns, ranges, rolling windows, volume, calendar,
                 and the z-scores of realised volatility and volume
    derivatives  perp, basis, funding, open interest, CVD; NULL, all of them, on a row whose
                 inputs are missing or still warming up (is_derivatives_complete false)
    vendors      CoinGlass, CoinAPI, FRED, Alpha Vantage, CryptoQuant; each NULL on its own
                 when its vendor was not landed or is stale (is_vendors_complete: all there)

    A bar gets a row once the spot set is warm: 100 bars of history for the longest rolling
    window, and z-score parameters for its day (int_feature_zscore_params: from the 30 days
    before the day began), so the first row comes at most 31 days after a symbol's first bar.
    Every value of row t uses only data whose available_at is at or before t's. -#}
{%- set interval_seconds = 300 -%}
{%- set window_seconds = var('features_window_seconds') | int -%}
{%- set refresh_seconds = var('features_quantile_refresh_seconds') | int -%}
{%- set window_bars = window_seconds // interval_seconds -%}
{%- set ema_bars = var('features_ema_truncation_bars') | int -%}
{#- the longest spot look-back: the EMA's bars, 60 returns (61 bars), 4 hours of returns -#}
{%- set spot_history_bars = [ema_bars, 61, 49] | max -%}
{%- set optional_share = var('optional_zscore_min_share') | float -%}
{%- set optional_min_values = [(window_bars * optional_share) | round(0, 'ceil') | int, 2] | max -%}
{%- set output_start = incremental_window_start('open_time', refresh_seconds) -%}
{#- funding's percentile and the vendors' z-scores look back a window; the spot windows less -#}
{%- set look_back_seconds = window_seconds + refresh_seconds + 2 * spot_history_bars * interval_seconds -%}
{%- set read_start = shift_timestamp_text(output_start, -look_back_seconds) -%}

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

intraday_vendors as (
    select * from {{ ref('int_intraday_vendor_metrics_as_of_bars_5m') }}
    where {{ at_or_after('open_time', read_start) }}
),

daily_series as (
    select * from {{ ref('int_daily_series_as_of_bars_5m') }}
    where {{ at_or_after('open_time', read_start) }}
),

zscore_inputs as (
    select * from {{ ref('int_feature_zscore_inputs_5m') }}
    where {{ at_or_after('open_time', read_start) }}
),

zscore_params as (
    select * from {{ ref('int_feature_zscore_params') }}
    where bar_interval = '5m'
),

spot_bars as (
    select
        symbol,
        open_time,
        available_at,
        epoch_s,
        cast(open as {{ type_double() }}) as open,
        cast(high as {{ type_double() }}) as high,
        cast(low as {{ type_double() }}) as low,
        cast(close as {{ type_double() }}) as close,
        cast(volume as {{ type_double() }}) as volume,
        cast(quote_volume as {{ type_double() }}) as quote_volume,
        cast(taker_buy_base_volume as {{ type_double() }}) as taker_buy_base_volume,
        imputed_minutes,
        is_imputed,
        cast(floor(epoch_s / {{ refresh_seconds }}) as {{ dbt.type_bigint() }}) as quantile_period,
        row_number() over (partition by symbol order by open_time) as bar_number
    from bars
),

spot_returns as (
    select
        *,
        ln(close / lag(close, 1) over (partition by symbol order by open_time)) as ret_5m,
        ln(close / lag(close, 12) over (partition by symbol order by open_time)) as ret_1h,
        ln(close / lag(close, 48) over (partition by symbol order by open_time)) as ret_4h,
        ln(close / lag(close, 10) over (partition by symbol order by open_time)) as momentum_10
    from spot_bars
),

spot_windows as (
    select
        *,
        {{ rolling_aggregate('avg', 'ret_5m', 5, 'bar_number > 5') }} as ret_mean_5,
        {{ rolling_aggregate('avg', 'ret_5m', 15, 'bar_number > 15') }} as ret_mean_15,
        {{ rolling_aggregate('avg', 'ret_5m', 60, 'bar_number > 60') }} as ret_mean_60,
        {{ rolling_aggregate('stddev_samp', 'ret_5m', 15, 'bar_number > 15') }} as ret_std_15,
        {{ rolling_aggregate('stddev_samp', 'ret_5m', 60, 'bar_number > 60') }} as ret_std_60,
        {{ rolling_aggregate('avg', 'close', 5, 'bar_number >= 5') }} as close_mean_5,
        {{ rolling_aggregate('avg', 'close', 15, 'bar_number >= 15') }} as close_mean_15,
        {{ rolling_aggregate('avg', 'close', 60, 'bar_number >= 60') }} as close_mean_60,
        {{ rolling_aggregate('avg', 'volume', 20, 'bar_number >= 20') }} as volume_mean_20,
        {{ rolling_aggregate('stddev_samp', 'volume', 20, 'bar_number >= 20') }} as volume_std_20,
        {{ finite_ema('volume', 20, ema_bars, 'bar_number >= ' ~ ema_bars) }} as volume_ema_20,
        cast({{ rolling_aggregate('sum', 'imputed_minutes', 12, 'bar_number >= 12') }} as {{ dbt.type_int() }})
            as imputed_minutes_1h,
        cast({{ rolling_aggregate('sum', 'imputed_minutes', 48, 'bar_number >= 48') }} as {{ dbt.type_int() }})
            as imputed_minutes_4h
    from spot_returns
),

sources_joined as (
    select
        spot_windows.*,
        zscore_inputs.rv_5m,
        zscore_inputs.oi_change_1h,
        zscore_inputs.cvd_diff_60m,
        cast(perp_bars.close as {{ type_double() }}) as perp_close,
        cast(perp_bars.quote_volume as {{ type_double() }}) as perp_quote_volume,
        perp_bars.is_imputed as is_perp_imputed,
        funding.funding_at,
        cast(funding.funding_rate as {{ type_double() }}) as funding_rate,
        cast(open_interest.sum_open_interest_value as {{ type_double() }}) as open_interest_value,
        open_interest.is_oi_forward_filled,
        intraday_vendors.open_interest_agg_change_1h,
        intraday_vendors.funding_oi_weighted_rate,
        intraday_vendors.funding_vol_weighted_rate,
        intraday_vendors.taker_futures_buy_usd_60m,
        intraday_vendors.taker_futures_sell_usd_60m,
        intraday_vendors.taker_spot_buy_usd_60m,
        intraday_vendors.taker_spot_sell_usd_60m,
        intraday_vendors.liquidation_long_usd_60m,
        intraday_vendors.liquidation_short_usd_60m,
        coalesce(intraday_vendors.coinapi_close, intraday_vendors.coinglass_close)
            as cross_check_close,
        daily_series.dgs10_change_1d_bps,
        daily_series.dtwexbgs_ln_change_5d,
        daily_series.vix_level_z,
        daily_series.spy_ret_1d,
        daily_series.uup_ret_1d,
        daily_series.cq_netflow_z,
        daily_series.cq_reserve_ln_change_7d,
        daily_series.cq_whale_ratio_z,
        coalesce(intraday_vendors.has_synthetic_input, false)
        or coalesce(daily_series.has_synthetic_input, false) as has_synthetic_input
    from spot_windows
    left join zscore_inputs
        on
            spot_windows.symbol = zscore_inputs.symbol
            and spot_windows.open_time = zscore_inputs.open_time
    left join perp_bars
        on
            spot_windows.symbol = perp_bars.symbol
            and spot_windows.open_time = perp_bars.open_time
    left join funding
        on
            spot_windows.symbol = funding.symbol
            and spot_windows.open_time = funding.open_time
    left join open_interest
        on
            spot_windows.symbol = open_interest.symbol
            and spot_windows.open_time = open_interest.open_time
    left join intraday_vendors
        on
            spot_windows.symbol = intraday_vendors.symbol
            and spot_windows.open_time = intraday_vendors.open_time
    left join daily_series
        on
            spot_windows.symbol = daily_series.symbol
            and spot_windows.open_time = daily_series.open_time
),

derivatives_computed as (
    select
        *,
        {{ safe_divide(
            rolling_aggregate('sum', 'perp_quote_volume', 12),
            rolling_aggregate('sum', 'perp_quote_volume + quote_volume', 12),
        ) }} as perp_share_60m,
        10000 * (perp_close - close) / close as basis_bps,
        -- aggregated OI: CoinGlass (all exchanges, USD), else Binance's OI value (USDT); each
        -- change from one source at both ends
        coalesce(
            open_interest_agg_change_1h,
            ln(
                open_interest_value
                / lag(open_interest_value, 12) over (partition by symbol order by open_time)
            )
        ) as oi_agg_change_1h,
        open_interest_agg_change_1h is null as is_oi_agg_fallback,
        -- funding: CoinGlass OI-weighted, else volume-weighted, else Binance's
        coalesce(funding_oi_weighted_rate, funding_vol_weighted_rate, funding_rate) as funding_agg_rate,
        case
            when funding_oi_weighted_rate is not null then 'coinglass_oi_weighted'
            when funding_vol_weighted_rate is not null then 'coinglass_vol_weighted'
            when funding_rate is not null then 'binance'
        end as funding_agg_source,
        ln(1 + liquidation_long_usd_60m) as liquidation_long_ln_60m,
        ln(1 + liquidation_short_usd_60m) as liquidation_short_ln_60m,
        ln(1 + liquidation_long_usd_60m + liquidation_short_usd_60m) as liquidation_total_ln_60m,
        case
            when liquidation_long_usd_60m + liquidation_short_usd_60m > 0
                then
                    (liquidation_long_usd_60m - liquidation_short_usd_60m)
                    / (liquidation_long_usd_60m + liquidation_short_usd_60m)
            when liquidation_long_usd_60m is not null and liquidation_short_usd_60m is not null then 0
        end as liquidation_imbalance_60m
    from sources_joined
),

inputs_clipped as (
    -- each z-score input clipped to its day's bounds (NULL while the bounds warm up)
    select
        derivatives_computed.*,
        {{ clipped_to_day_bounds('rv_5m') }} as rv_5m_clipped,
        zscore_params.rv_5m_mean,
        zscore_params.rv_5m_sd,
        {{ clipped_to_day_bounds('volume') }} as volume_clipped,
        zscore_params.volume_mean,
        zscore_params.volume_sd,
        {{ clipped_to_day_bounds('oi_change_1h') }} as oi_change_1h_clipped,
        zscore_params.oi_change_1h_mean,
        zscore_params.oi_change_1h_sd,
        {{ clipped_to_day_bounds('funding_rate') }} as funding_rate_clipped,
        zscore_params.funding_rate_mean,
        zscore_params.funding_rate_sd,
        {{ clipped_to_day_bounds('cvd_diff_60m') }} as cvd_diff_60m_clipped,
        zscore_params.cvd_diff_60m_mean,
        zscore_params.cvd_diff_60m_sd
    from derivatives_computed
    left join zscore_params
        on
            derivatives_computed.symbol = zscore_params.symbol
            and derivatives_computed.quantile_period = zscore_params.quantile_period
),

zscores_computed as (
    select
        *,
        {{ zscore('rv_5m_clipped', 'rv_5m_mean', 'rv_5m_sd') }} as rv_5m_z,
        {{ zscore('volume_clipped', 'volume_mean', 'volume_sd') }} as vol_z,
        {{ zscore('oi_change_1h_clipped', 'oi_change_1h_mean', 'oi_change_1h_sd') }} as oi_z,
        {{ zscore('funding_rate_clipped', 'funding_rate_mean', 'funding_rate_sd') }} as fund_now_z,
        {{ zscore('cvd_diff_60m_clipped', 'cvd_diff_60m_mean', 'cvd_diff_60m_sd') }} as cvd_diff_z,
        -- vendor inputs: plain trailing z-scores (not winsorised), NULL while less than
        -- optional_zscore_min_share of the window has them
        {{ optional_zscore('liquidation_total_ln_60m', window_bars, optional_min_values) }} as liq60_z,
        {{ optional_zscore('liquidation_long_ln_60m', window_bars, optional_min_values) }} as liq_long_z,
        {{ optional_zscore('liquidation_short_ln_60m', window_bars, optional_min_values) }} as liq_short_z,
        {{ optional_zscore('liquidation_imbalance_60m', window_bars, optional_min_values) }} as liq_imbalance_z
    from inputs_clipped
),

funding_events as (
    select distinct
        symbol,
        funding_at,
        cast(funding_rate as {{ type_double() }}) as funding_rate
    from funding
    where funding_at is not null
),

funding_history as (
    -- the first funding event of the whole history (not the read range: an incremental run
    -- must judge the percentile's warm-up as a full build does, outages included)
    select
        symbol,
        min(funding_at) as first_funding_at
    from {{ ref('int_funding_as_of_bars_5m') }}
    where funding_at is not null
    group by symbol
),

funding_ranked as (
    -- share of the trailing window's funding events at or below the current rate, once the
    -- funding history covers the window
    select
        current_event.symbol,
        current_event.funding_at,
        avg(case when past_event.funding_rate <= current_event.funding_rate then 1.0 else 0.0 end)
            as funding_pctile_30d
    from funding_events as current_event
    inner join funding_history
        on current_event.symbol = funding_history.symbol
    inner join funding_events as past_event
        on
            current_event.symbol = past_event.symbol
            and current_event.funding_at >= past_event.funding_at
            and {{ timestamp_add_seconds('current_event.funding_at', -window_seconds) }}
            < past_event.funding_at
    where
        funding_history.first_funding_at
        <= {{ timestamp_add_seconds('current_event.funding_at', -window_seconds) }}
    group by current_event.symbol, current_event.funding_at
),

sets_checked as (
    select
        zscores_computed.*,
        cast(funding_ranked.funding_pctile_30d as {{ type_double() }}) as funding_pctile_30d,
        coalesce(
            zscores_computed.oi_z is not null
            and zscores_computed.fund_now_z is not null
            and zscores_computed.cvd_diff_z is not null
            and funding_ranked.funding_pctile_30d is not null
            and zscores_computed.perp_share_60m is not null
            and zscores_computed.basis_bps is not null
            and zscores_computed.is_perp_imputed is not null
            and zscores_computed.is_oi_forward_filled is not null
            and zscores_computed.oi_agg_change_1h is not null
            and zscores_computed.funding_agg_rate is not null,
            false
        ) as is_derivatives_complete
    from zscores_computed
    left join funding_ranked
        on
            zscores_computed.symbol = funding_ranked.symbol
            and zscores_computed.funding_at = funding_ranked.funding_at
),

final as (
    select
        symbol,
        open_time,
        available_at,
        close,
        -- the spot set
        ret_5m,
        ret_1h,
        ret_4h,
        ln(high / low) as hl_range,
        ln(close / open) as co_ret,
        rv_5m_z,
        vol_z,
        case when volume > 0 then (2 * taker_buy_base_volume - volume) / volume else 0 end
            as taker_imbalance,
        sin({{ hour_of_week_angle('epoch_s') }}) as hour_of_week_sin,
        cos({{ hour_of_week_angle('epoch_s') }}) as hour_of_week_cos,
        ret_mean_5,
        ret_mean_15,
        ret_mean_60,
        ret_std_15,
        ret_std_60,
        momentum_10,
        ln(close / close_mean_5) as close_rel_mean_5,
        ln(close / close_mean_15) as close_rel_mean_15,
        ln(close / close_mean_60) as close_rel_mean_60,
        case when high > low then (close - low) / (high - low) else 0.5 end as range_position,
        case when volume_mean_20 > 0 then volume / volume_mean_20 else 1 end as volume_rel_mean_20,
        case when volume_mean_20 > 0 then volume_std_20 / volume_mean_20 else 0 end as volume_cv_20,
        case when volume_ema_20 > 0 then volume / volume_ema_20 else 1 end as volume_rel_ema_20,
        is_imputed as is_imputed_bar,
        imputed_minutes_1h,
        imputed_minutes_4h,
        -- the derivatives set: all of it, or none
        case when is_derivatives_complete then oi_z end as oi_z,
        case when is_derivatives_complete then fund_now_z end as fund_now_z,
        case when is_derivatives_complete then funding_pctile_30d end as funding_pctile_30d,
        case when is_derivatives_complete then cvd_diff_z end as cvd_diff_z,
        case when is_derivatives_complete then perp_share_60m end as perp_share_60m,
        case when is_derivatives_complete then basis_bps end as basis_bps,
        case when is_derivatives_complete then is_perp_imputed end as is_perp_imputed_bar,
        case when is_derivatives_complete then is_oi_forward_filled end as is_oi_forward_filled,
        case when is_derivatives_complete then 10000 * funding_agg_rate end as funding_agg_bps,
        case when is_derivatives_complete then funding_agg_source end as funding_agg_source,
        case when is_derivatives_complete then funding_agg_source <> 'coinglass_oi_weighted' end
            as is_funding_fallback,
        case when is_derivatives_complete then oi_agg_change_1h end as oi_agg_change_1h,
        case when is_derivatives_complete then is_oi_agg_fallback end as is_oi_agg_fallback,
        -- the vendors set: each its own (NULL when its vendor is missing or stale)
        liq60_z,
        liq_long_z,
        liq_short_z,
        liq_imbalance_z,
        {{ safe_divide(
            'taker_futures_buy_usd_60m - taker_futures_sell_usd_60m',
            'taker_futures_buy_usd_60m + taker_futures_sell_usd_60m',
        ) }} as taker_agg_futures_imbalance_60m,
        {{ safe_divide(
            'taker_spot_buy_usd_60m - taker_spot_sell_usd_60m',
            'taker_spot_buy_usd_60m + taker_spot_sell_usd_60m',
        ) }} as taker_agg_spot_imbalance_60m,
        dgs10_change_1d_bps,
        dtwexbgs_ln_change_5d,
        vix_level_z,
        spy_ret_1d,
        uup_ret_1d,
        cq_netflow_z,
        cq_reserve_ln_change_7d,
        cq_whale_ratio_z,
        10000 * (cross_check_close - close) / close as price_check_dev_bps,
        -- which sets the row holds, and where its inputs came from
        true as is_spot_complete,
        is_derivatives_complete,
        coalesce(
            liq60_z is not null
            and liq_long_z is not null
            and liq_short_z is not null
            and liq_imbalance_z is not null
            and taker_futures_buy_usd_60m + taker_futures_sell_usd_60m > 0
            and taker_spot_buy_usd_60m + taker_spot_sell_usd_60m > 0
            and dgs10_change_1d_bps is not null
            and dtwexbgs_ln_change_5d is not null
            and vix_level_z is not null
            and spy_ret_1d is not null
            and uup_ret_1d is not null
            and cq_netflow_z is not null
            and cq_reserve_ln_change_7d is not null
            and cq_whale_ratio_z is not null
            and cross_check_close is not null,
            false
        ) as is_vendors_complete,
        has_synthetic_input
    from sets_checked
    where
        -- warm-up of the spot set: its longest window is full and its z-scores have their
        -- day's parameters
        bar_number >= {{ spot_history_bars }}
        and rv_5m_z is not null
        and vol_z is not null
        and {{ at_or_after('open_time', output_start) }}
)

select * from final
