{#- CoinGlass and CoinAPI 5m rows of the warehouse symbols as one event stream per metric:
    vendor symbols mapped (a coin's aggregated row wins over the pair's), one row per
    (symbol, stream_name, open_time), with the trailing 60-minute sums and the value one hour
    earlier that the features need. Streams and their values are listed in
    _vendors__models.yml.
    Incremental runs rebuild the rows from `vendor_window_start`, reading the vendor rows from
    an hour earlier (the trailing sums and the value an hour earlier reach that far back). -#}
{{
    config(
        materialized='incremental',
        unique_key=['symbol', 'stream_name', 'open_time'],
        on_schema_change='fail',
    )
}}
{%- set window_start = vendor_window_start() -%}
{%- set read_start = shift_timestamp_text(window_start, -3600) -%}

with

coinglass_symbols as (
    {{ vendor_symbol_pairs('coinglass') }}
),

coinapi_symbols as (
    {{ vendor_symbol_pairs('coinapi_spot') }}
),

open_interest as (
    select * from {{ ref('stg_coinglass__open_interest_aggregated') }}
    where {{ at_or_after('open_time', read_start) }}
),

funding_oi_weighted as (
    select * from {{ ref('stg_coinglass__funding_oi_weighted') }}
    where {{ at_or_after('open_time', read_start) }}
),

funding_vol_weighted as (
    select * from {{ ref('stg_coinglass__funding_vol_weighted') }}
    where {{ at_or_after('open_time', read_start) }}
),

taker_futures as (
    select * from {{ ref('stg_coinglass__taker_volume_agg_futures') }}
    where {{ at_or_after('open_time', read_start) }}
),

taker_spot as (
    select * from {{ ref('stg_coinglass__taker_volume_agg_spot') }}
    where {{ at_or_after('open_time', read_start) }}
),

liquidations as (
    select * from {{ ref('stg_coinglass__liquidations') }}
    where {{ at_or_after('open_time', read_start) }}
),

coinglass_prices as (
    select * from {{ ref('stg_coinglass__price_ohlc') }}
    where {{ at_or_after('open_time', read_start) }}
),

coinapi_prices as (
    select * from {{ ref('stg_coinapi__ohlcv') }}
    where {{ at_or_after('open_time', read_start) }}
),

coinglass_unioned as (
    select
        'open_interest' as stream_name,
        symbol as vendor_symbol,
        open_time,
        available_at,
        open_interest_close_usd as value_1,
        cast(null as {{ type_double() }}) as value_2,
        is_synthetic,
        ingested_at
    from open_interest
    union all
    select
        'funding_oi_weighted' as stream_name,
        symbol as vendor_symbol,
        open_time,
        available_at,
        -- CoinGlass quotes funding in percent: as a fraction like Binance's
        funding_close_pct / 100 as value_1,
        cast(null as {{ type_double() }}) as value_2,
        is_synthetic,
        ingested_at
    from funding_oi_weighted
    union all
    select
        'funding_vol_weighted' as stream_name,
        symbol as vendor_symbol,
        open_time,
        available_at,
        funding_close_pct / 100 as value_1,
        cast(null as {{ type_double() }}) as value_2,
        is_synthetic,
        ingested_at
    from funding_vol_weighted
    union all
    select
        'taker_futures' as stream_name,
        symbol as vendor_symbol,
        open_time,
        available_at,
        taker_buy_volume_usd as value_1,
        taker_sell_volume_usd as value_2,
        is_synthetic,
        ingested_at
    from taker_futures
    union all
    select
        'taker_spot' as stream_name,
        symbol as vendor_symbol,
        open_time,
        available_at,
        taker_buy_volume_usd as value_1,
        taker_sell_volume_usd as value_2,
        is_synthetic,
        ingested_at
    from taker_spot
    union all
    select
        'liquidations' as stream_name,
        symbol as vendor_symbol,
        open_time,
        available_at,
        long_liquidation_usd as value_1,
        short_liquidation_usd as value_2,
        is_synthetic,
        ingested_at
    from liquidations
    union all
    select
        'coinglass_price' as stream_name,
        symbol as vendor_symbol,
        open_time,
        available_at,
        close as value_1,
        cast(null as {{ type_double() }}) as value_2,
        is_synthetic,
        ingested_at
    from coinglass_prices
),

symbols_mapped as (
    select
        coinglass_symbols.symbol,
        'coinglass' as vendor,
        coinglass_unioned.stream_name,
        coinglass_unioned.open_time,
        coinglass_unioned.available_at,
        coinglass_unioned.value_1,
        coinglass_unioned.value_2,
        coinglass_unioned.is_synthetic,
        coinglass_unioned.ingested_at,
        coinglass_symbols.preference
    from coinglass_unioned
    inner join coinglass_symbols
        on coinglass_unioned.vendor_symbol = coinglass_symbols.vendor_symbol
    union all
    select
        coinapi_symbols.symbol,
        'coinapi' as vendor,
        'coinapi_price' as stream_name,
        coinapi_prices.open_time,
        coinapi_prices.available_at,
        coinapi_prices.close as value_1,
        cast(null as {{ type_double() }}) as value_2,
        coinapi_prices.is_synthetic,
        coinapi_prices.ingested_at,
        coinapi_symbols.preference
    from coinapi_prices
    inner join coinapi_symbols
        on coinapi_prices.symbol = coinapi_symbols.vendor_symbol
),

preferred as (
    -- one row per (symbol, stream_name, open_time): the preferred vendor symbol, then the earliest
    select
        *,
        row_number() over (
            partition by symbol, stream_name, open_time
            order by preference, available_at
        ) as row_rank
    from symbols_mapped
),

deduplicated as (
    select
        symbol,
        vendor,
        stream_name,
        open_time,
        available_at,
        {{ epoch_seconds('open_time') }} as epoch_s,
        value_1,
        value_2,
        is_synthetic,
        ingested_at
    from preferred
    where row_rank = 1
),

hour_sums_computed as (
    -- trailing 60 minutes (twelve 5m periods, on epoch seconds: gaps do not stretch it)
    select
        *,
        count(value_1) over (
            partition by symbol, stream_name
            order by epoch_s
            range between 3300 preceding and current row
        ) as periods_60m,
        sum(value_1) over (
            partition by symbol, stream_name
            order by epoch_s
            range between 3300 preceding and current row
        ) as value_1_sum_60m_all,
        sum(value_2) over (
            partition by symbol, stream_name
            order by epoch_s
            range between 3300 preceding and current row
        ) as value_2_sum_60m_all
    from deduplicated
),

final as (
    select
        current_period.symbol,
        current_period.vendor,
        current_period.stream_name,
        current_period.open_time,
        current_period.available_at,
        current_period.epoch_s,
        current_period.value_1,
        current_period.value_2,
        case when current_period.periods_60m = 12 then current_period.value_1_sum_60m_all end
            as value_1_sum_60m,
        case when current_period.periods_60m = 12 then current_period.value_2_sum_60m_all end
            as value_2_sum_60m,
        -- (a condition here, not in ON: an inequality there makes DuckDB nest loops)
        case
            when hour_earlier.available_at <= current_period.available_at then hour_earlier.value_1
        end as value_1_1h_earlier,
        current_period.is_synthetic,
        current_period.ingested_at
    from hour_sums_computed as current_period
    left join deduplicated as hour_earlier
        on
            current_period.symbol = hour_earlier.symbol
            and current_period.stream_name = hour_earlier.stream_name
            and current_period.epoch_s - 3600 = hour_earlier.epoch_s
    where {{ at_or_after('current_period.open_time', window_start) }}
)

select * from final
