{#- The body of a features mart (features_5m, features_1h): causal features of the bars of
    `interval_seconds` (a whole number of 5-minute bars, at most an hour). Every value at bar t
    uses only rows whose available_at is at or before t's: lags and trailing ROWS frames on the
    dense bar grid, funding, open interest and the other vendors joined as-of upstream, winsorisation bounds from
    periods that ended before t's period began. Formulas are in _features__models.yml.

    Winsorisation bounds are exact quantiles refreshed once per `features_quantile_refresh_seconds`
    (a day) from the trailing `features_window_seconds` (30 days) before the period starts: a
    sliding percentile has no portable form (BigQuery's PERCENTILE_CONT takes no frame), but a
    per-period quantile over a GROUP BY of an explicit fan-out does. z-scores are sliding
    (ROWS frames of the window's bar count over the winsorised values). -#}
{#- Arguments: the bar width and the relations of that grain (bars, perp_bars, funding and
    open_interest as of the bars); five_minute_bars (bars_5m) when the grain is wider than 5m,
    for the 5m return and realised volatility inside each bar. -#}
{#- intraday_vendors and daily_series: the other vendors' values as of the bars
    (int_intraday_vendor_metrics_as_of_bars_*, int_daily_series_as_of_bars_*); the features
    from them are optional (NULL when the vendor was not landed or is stale) and never hold a
    row back from publication, except the fallback ones that Binance completes. -#}
{% macro features_mart(interval_seconds, bars, perp_bars, funding, open_interest, intraday_vendors, daily_series, five_minute_bars=none) -%}
{%- set bars_per_hour = 3600 // interval_seconds -%}
{%- set window_seconds = var('features_window_seconds') | int -%}
{%- set refresh_seconds = var('features_quantile_refresh_seconds') | int -%}
{%- set window_bars = window_seconds // interval_seconds -%}
{%- set refresh_periods = window_seconds // refresh_seconds -%}
{%- set ema_bars = var('features_ema_truncation_bars') | int -%}
{#- optional z-scores need this many values in their trailing window -#}
{%- set optional_min_values = [(window_bars * (var('optional_zscore_min_share') | float)) | round(0, 'ceil') | int, 2] | max -%}
{#- A row needs this many bars of spot history for its longest non-normalised window. -#}
{%- set spot_history_bars = [ema_bars, 60 + 1, 4 * bars_per_hour + 1] | max -%}
{#- z-score inputs, each published as its winsorised trailing z-score. -#}
{%- set normalised = {
    'rv_5m': 'rv_5m_z',
    'volume': 'vol_z',
    'oi_change_1h': 'oi_z',
    'funding_rate': 'fund_now_z',
    'cvd_diff_60m': 'cvd_diff_z',
} -%}


{#- Optional (vendor) inputs, published as plain trailing z-scores over the same N bars (not
    winsorised: their warm-up must not hold core rows back), NULL while fewer than
    `optional_zscore_min_share` of the window has the input. -#}
{%- set optional_normalised = {
    'liquidation_total_ln_60m': 'liq60_z',
    'liquidation_long_ln_60m': 'liq_long_z',
    'liquidation_short_ln_60m': 'liq_short_z',
    'liquidation_imbalance_60m': 'liq_imbalance_z',
} -%}


{#- Incremental runs rewrite the rows from the bars marts' own look-back on, and read enough
    history before that for a full z-score window of values winsorised with bounds that need a
    full window of their own. -#}
{%- set output_start = incremental_window_start('open_time', refresh_seconds) -%}
{%- set read_start = shift_timestamp_text(
    output_start,
    -(2 * window_seconds + 2 * refresh_seconds + 2 * spot_history_bars * interval_seconds),
) -%}

with

bars as (
    select * from {{ bars }}
    where {{ at_or_after('open_time', read_start) }}
),

perp_bars as (
    select * from {{ perp_bars }}
    where {{ at_or_after('open_time', read_start) }}
),

funding as (
    select * from {{ funding }}
    where {{ at_or_after('open_time', read_start) }}
),

open_interest as (
    select * from {{ open_interest }}
    where {{ at_or_after('open_time', read_start) }}
),

intraday_vendors as (
    select * from {{ intraday_vendors }}
    where {{ at_or_after('open_time', read_start) }}
),

daily_series as (
    select * from {{ daily_series }}
    where {{ at_or_after('open_time', read_start) }}
),
{%- if interval_seconds > 300 %}

five_minute_bars as (
    select * from {{ five_minute_bars }}
    where {{ at_or_after('open_time', read_start) }}
),

five_minute_returns as (
    select
        symbol,
        epoch_s,
        epoch_s - mod(epoch_s, {{ interval_seconds }}) as bar_epoch_s,
        ln(
            cast(close as {{ type_double() }})
            / cast(lag(close, 1) over (partition by symbol order by open_time) as {{ type_double() }})
        ) as five_minute_return
    from five_minute_bars
),

five_minute_returns_per_bar as (
    -- the last 5m return of each bar, and realised volatility from all of them
    select
        symbol,
        bar_epoch_s,
        max(
            case when epoch_s = bar_epoch_s + {{ interval_seconds - 300 }} then five_minute_return end
        ) as ret_5m,
        case
            when count(five_minute_return) = {{ interval_seconds // 300 }}
                then sqrt(sum(five_minute_return * five_minute_return))
        end as rv_5m
    from five_minute_returns
    group by symbol, bar_epoch_s
),
{%- endif %}

sources_joined as (
    select
        bars.symbol,
        bars.open_time,
        bars.available_at,
        bars.epoch_s,
        cast(bars.open as {{ type_double() }}) as open,
        cast(bars.high as {{ type_double() }}) as high,
        cast(bars.low as {{ type_double() }}) as low,
        cast(bars.close as {{ type_double() }}) as close,
        cast(bars.volume as {{ type_double() }}) as volume,
        cast(bars.quote_volume as {{ type_double() }}) as quote_volume,
        cast(bars.taker_buy_base_volume as {{ type_double() }}) as taker_buy_base_volume,
        bars.imputed_minutes,
        bars.is_imputed,
        cast(perp_bars.close as {{ type_double() }}) as perp_close,
        cast(perp_bars.volume as {{ type_double() }}) as perp_volume,
        cast(perp_bars.quote_volume as {{ type_double() }}) as perp_quote_volume,
        cast(perp_bars.taker_buy_base_volume as {{ type_double() }}) as perp_taker_buy_base_volume,
        perp_bars.is_imputed as is_perp_imputed,
        cast(funding.funding_rate as {{ type_double() }}) as funding_rate,
        funding.funding_at,
        cast(open_interest.sum_open_interest as {{ type_double() }}) as open_interest,
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
        or coalesce(daily_series.has_synthetic_input, false) as has_synthetic_input,
        {%- if interval_seconds > 300 %}
        five_minute_returns_per_bar.ret_5m,
        five_minute_returns_per_bar.rv_5m,
        {%- endif %}
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
    left join intraday_vendors
        on
            bars.symbol = intraday_vendors.symbol
            and bars.open_time = intraday_vendors.open_time
    left join daily_series
        on
            bars.symbol = daily_series.symbol
            and bars.open_time = daily_series.open_time
    {%- if interval_seconds > 300 %}
    left join five_minute_returns_per_bar
        on
            bars.symbol = five_minute_returns_per_bar.symbol
            and bars.epoch_s = five_minute_returns_per_bar.bar_epoch_s
    {%- endif %}
),

returns_computed as (
    select
        *,
        -- the one-bar log return (ret_5m at 5m, ret_1h at 1h)
        ln(close / lag(close, 1) over (partition by symbol order by open_time)) as bar_return,
        ln(close / lag(close, {{ bars_per_hour }}) over (partition by symbol order by open_time))
            as ret_1h,
        ln(close / lag(close, {{ 4 * bars_per_hour }}) over (partition by symbol order by open_time))
            as ret_4h,
        ln(close / lag(close, 10) over (partition by symbol order by open_time)) as momentum_10,
        ln(high / low) as hl_range,
        ln(close / open) as co_ret,
        ln(
            open_interest
            / lag(open_interest, {{ bars_per_hour }}) over (partition by symbol order by open_time)
        ) as oi_change_1h,
        -- signed taker flow (buys minus sells, base asset): one bar's step of the CVD
        2 * taker_buy_base_volume - volume as spot_taker_delta,
        2 * perp_taker_buy_base_volume - perp_volume as perp_taker_delta,
        -- aggregated OI: CoinGlass (all exchanges, USD), else Binance's OI value (USDT); each
        -- change from one source at both ends
        coalesce(
            open_interest_agg_change_1h,
            ln(
                open_interest_value
                / lag(open_interest_value, {{ bars_per_hour }}) over (partition by symbol order by open_time)
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
                then (liquidation_long_usd_60m - liquidation_short_usd_60m)
                / (liquidation_long_usd_60m + liquidation_short_usd_60m)
            when liquidation_long_usd_60m is not null and liquidation_short_usd_60m is not null then 0
        end as liquidation_imbalance_60m
    from sources_joined
),

windows_computed as (
    select
        *,
        {%- if interval_seconds == 300 %}
        bar_return as ret_5m,
        sqrt({{ rolling_aggregate('sum', 'bar_return * bar_return', bars_per_hour, 'bar_number > ' ~ bars_per_hour) }})
            as rv_5m,
        {%- endif %}
        {{ rolling_aggregate('sum', 'perp_taker_delta - spot_taker_delta', bars_per_hour) }}
            as cvd_diff_60m,
        {{ safe_divide(
            rolling_aggregate('sum', 'perp_quote_volume', bars_per_hour),
            rolling_aggregate('sum', 'perp_quote_volume + quote_volume', bars_per_hour),
        ) }} as perp_share_60m,
        {{ rolling_aggregate('avg', 'bar_return', 5, 'bar_number > 5') }} as ret_mean_5,
        {{ rolling_aggregate('avg', 'bar_return', 15, 'bar_number > 15') }} as ret_mean_15,
        {{ rolling_aggregate('avg', 'bar_return', 60, 'bar_number > 60') }} as ret_mean_60,
        {{ rolling_aggregate('stddev_samp', 'bar_return', 15, 'bar_number > 15') }} as ret_std_15,
        {{ rolling_aggregate('stddev_samp', 'bar_return', 60, 'bar_number > 60') }} as ret_std_60,
        {{ rolling_aggregate('avg', 'volume', 20, 'bar_number >= 20') }} as volume_mean_20,
        {{ rolling_aggregate('stddev_samp', 'volume', 20, 'bar_number >= 20') }} as volume_std_20,
        {{ finite_ema('volume', 20, ema_bars, 'bar_number >= ' ~ ema_bars) }} as volume_ema_20,
        cast({{ rolling_aggregate('sum', 'imputed_minutes', bars_per_hour, 'bar_number >= ' ~ bars_per_hour) }} as {{ dbt.type_int() }})
            as imputed_minutes_1h,
        cast({{ rolling_aggregate('sum', 'imputed_minutes', 4 * bars_per_hour, 'bar_number >= ' ~ 4 * bars_per_hour) }} as {{ dbt.type_int() }})
            as imputed_minutes_4h,
        cast(floor(epoch_s / {{ refresh_seconds }}) as {{ dbt.type_bigint() }}) as quantile_period
    from returns_computed
),

input_history as (
    -- when each z-score input was first observed: a window is full once it lies after that
    select
        symbol,
        {%- for column in normalised %}
        min(case when {{ column }} is not null then epoch_s end) as {{ column }}_first_epoch_s,
        {%- endfor %}
        min(epoch_s) as first_epoch_s,
        max(quantile_period) as last_quantile_period
    from windows_computed
    group by symbol
),

quantile_windows as (
    -- each bar joins the trailing window of each of the {{ refresh_periods }} periods after its
    -- own, for the periods that can get bounds: they hold bars and their window starts with data
    select
        windows_computed.symbol,
        windows_computed.quantile_period + window_steps.periods_ahead as quantile_period,
        {%- for column in normalised %}
        windows_computed.{{ column }}{{ "," if not loop.last }}
        {%- endfor %}
    from windows_computed
    inner join input_history
        on windows_computed.symbol = input_history.symbol
    {{ integer_range_join(1, refresh_periods, 'window_steps', 'periods_ahead') }}
    where
        windows_computed.quantile_period + window_steps.periods_ahead
        <= input_history.last_quantile_period
        and (windows_computed.quantile_period + window_steps.periods_ahead) * {{ refresh_seconds }}
        - {{ window_seconds }} >= input_history.first_epoch_s
),

winsor_bounds as (
    -- one row per symbol and period: the bounds every bar of that period is clipped to
    {{ grouped_quantiles(
        'quantile_windows',
        ['symbol', 'quantile_period'],
        normalised.keys() | list,
        {'lower': var('features_winsor_lower'), 'upper': var('features_winsor_upper')},
    ) | indent(4) }}
),

values_winsorised as (
    select
        windows_computed.*,
        {%- for column in normalised %}
        {{ winsorise(
            'windows_computed.' ~ column,
            'winsor_bounds.' ~ column ~ '_lower',
            'winsor_bounds.' ~ column ~ '_upper',
            valid_when='input_history.' ~ column ~ '_first_epoch_s <= windows_computed.quantile_period * '
                ~ refresh_seconds ~ ' - ' ~ window_seconds,
        ) }} as {{ column }}_winsorised{{ "," if not loop.last }}
        {%- endfor %}
    from windows_computed
    inner join input_history
        on windows_computed.symbol = input_history.symbol
    left join winsor_bounds
        on
            windows_computed.symbol = winsor_bounds.symbol
            and windows_computed.quantile_period = winsor_bounds.quantile_period
),

winsorised_history as (
    select
        symbol,
        {%- for column in normalised %}
        min(case when {{ column }}_winsorised is not null then epoch_s end)
            as {{ column }}_winsorised_first_epoch_s{{ "," if not loop.last }}
        {%- endfor %}
    from values_winsorised
    group by symbol
),

moments_computed as (
    -- trailing mean and sample standard deviation of each winsorised input
    select
        *,
        {%- for column in normalised %}
        avg({{ column }}_winsorised) {{ trailing_rows(window_bars) }} as {{ column }}_mean,
        stddev_samp({{ column }}_winsorised) {{ trailing_rows(window_bars) }} as {{ column }}_sd{{ "," if not loop.last }}
        {%- endfor %}
    from values_winsorised
),

zscores_computed as (
    select
        *,
        {%- for column, zscore_column in normalised.items() %}
        {{ zscore(column ~ '_winsorised', column ~ '_mean', column ~ '_sd') }} as {{ zscore_column }},
        {%- endfor %}
        {%- for column, zscore_column in optional_normalised.items() %}
        {{ optional_zscore(column, window_bars, optional_min_values) }} as {{ zscore_column }}{{ "," if not loop.last }}
        {%- endfor %}
    from moments_computed
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
    select
        symbol,
        min(funding_at) as first_funding_at
    from funding_events
    group by symbol
),

funding_ranked as (
    -- share of the trailing window's funding events at or below the current rate
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
    where funding_history.first_funding_at
        <= {{ timestamp_add_seconds('current_event.funding_at', -window_seconds) }}
    group by current_event.symbol, current_event.funding_at
),

final as (
    select
        zscores_computed.symbol,
        zscores_computed.open_time,
        zscores_computed.available_at,
        zscores_computed.close,
        zscores_computed.ret_5m,
        zscores_computed.ret_1h,
        zscores_computed.ret_4h,
        zscores_computed.hl_range,
        zscores_computed.co_ret,
        zscores_computed.rv_5m_z,
        zscores_computed.vol_z,
        zscores_computed.oi_z,
        zscores_computed.fund_now_z,
        cast(funding_ranked.funding_pctile_30d as {{ type_double() }}) as funding_pctile_30d,
        zscores_computed.cvd_diff_z,
        zscores_computed.perp_share_60m,
        zscores_computed.liq60_z,
        10000 * (zscores_computed.perp_close - zscores_computed.close) / zscores_computed.close
            as basis_bps,
        case
            when zscores_computed.volume > 0 then zscores_computed.spot_taker_delta / zscores_computed.volume
            else 0
        end as taker_imbalance,
        sin({{ hour_of_week_angle('zscores_computed.epoch_s') }}) as hour_of_week_sin,
        cos({{ hour_of_week_angle('zscores_computed.epoch_s') }}) as hour_of_week_cos,
        zscores_computed.ret_mean_5,
        zscores_computed.ret_mean_15,
        zscores_computed.ret_mean_60,
        zscores_computed.ret_std_15,
        zscores_computed.ret_std_60,
        zscores_computed.momentum_10,
        zscores_computed.volume_mean_20,
        zscores_computed.volume_std_20,
        zscores_computed.volume_ema_20,
        zscores_computed.is_imputed as is_imputed_bar,
        zscores_computed.imputed_minutes_1h,
        zscores_computed.imputed_minutes_4h,
        zscores_computed.is_perp_imputed as is_perp_imputed_bar,
        zscores_computed.is_oi_forward_filled,
        -- other vendors (optional but for the two fallbacks, which Binance completes)
        10000 * zscores_computed.funding_agg_rate as funding_agg_bps,
        zscores_computed.funding_agg_source,
        zscores_computed.funding_agg_source <> 'coinglass_oi_weighted' as is_funding_fallback,
        zscores_computed.oi_agg_change_1h,
        zscores_computed.is_oi_agg_fallback,
        zscores_computed.liq_long_z,
        zscores_computed.liq_short_z,
        zscores_computed.liq_imbalance_z,
        {{ safe_divide(
            'zscores_computed.taker_futures_buy_usd_60m - zscores_computed.taker_futures_sell_usd_60m',
            'zscores_computed.taker_futures_buy_usd_60m + zscores_computed.taker_futures_sell_usd_60m',
        ) }} as taker_agg_futures_imbalance_60m,
        {{ safe_divide(
            'zscores_computed.taker_spot_buy_usd_60m - zscores_computed.taker_spot_sell_usd_60m',
            'zscores_computed.taker_spot_buy_usd_60m + zscores_computed.taker_spot_sell_usd_60m',
        ) }} as taker_agg_spot_imbalance_60m,
        zscores_computed.dgs10_change_1d_bps,
        zscores_computed.dtwexbgs_ln_change_5d,
        zscores_computed.vix_level_z,
        zscores_computed.spy_ret_1d,
        zscores_computed.uup_ret_1d,
        zscores_computed.cq_netflow_z,
        zscores_computed.cq_reserve_ln_change_7d,
        zscores_computed.cq_whale_ratio_z,
        10000 * (zscores_computed.cross_check_close - zscores_computed.close) / zscores_computed.close
            as price_check_dev_bps,
        zscores_computed.has_synthetic_input
    from zscores_computed
    inner join winsorised_history
        on zscores_computed.symbol = winsorised_history.symbol
    left join funding_ranked
        on
            zscores_computed.symbol = funding_ranked.symbol
            and zscores_computed.funding_at = funding_ranked.funding_at
    where
        -- warm-up: every window is full
        zscores_computed.bar_number >= {{ spot_history_bars }}
        {%- for column in normalised %}
        and winsorised_history.{{ column }}_winsorised_first_epoch_s
            <= zscores_computed.epoch_s - {{ (window_bars - 1) * interval_seconds }}
        {%- endfor %}
        and funding_ranked.funding_at is not null
        -- every source has a row at t (a late perp or stale funding/OI day waits for the next run)
        and zscores_computed.perp_close is not null
        and zscores_computed.funding_rate is not null
        and zscores_computed.open_interest is not null
        and {{ at_or_after('zscores_computed.open_time', output_start) }}
)

select * from final
{%- endmacro %}
