{#- Daily series (FRED, Alpha Vantage closes, CryptoQuant metrics) as they were known over time.
    A "state" starts at every distinct available_at of a series' vintages: at that instant the
    known value of each observation day is its latest vintage whose available_at <= the state's
    (a revision published later is not known yet), and the state summarises the latest
    observations: the last value, the ones 1, 5 and 7 observations before it, and the mean and
    sample sd of the last `daily_series_zscore_observations`. NULL values (FRED's ".") are not
    observations. Formulas in _vendors__models.yml.
    Incremental runs rebuild the states from `vendor_window_start` (per series: a vintage
    changes only the states at or after its available_at), reading the vintages of the
    observation days those states look back over. -#}
{{
    config(
        materialized='incremental',
        unique_key=['vendor', 'scope', 'series', 'state_at'],
        on_schema_change='fail',
    )
}}
{%- set zscore_observations = var('daily_series_zscore_observations') | int -%}
{%- set lookback_days = var('daily_series_lookback_days') | int -%}
{%- set window_start = vendor_window_start('state_at', 'vendor, scope, series') -%}

with

fred_vintages as (
    select * from {{ ref('stg_fred__series_vintages') }}
),

alphavantage_bars as (
    select * from {{ ref('stg_alphavantage__daily_bars') }}
),

cryptoquant_vintages as (
    select * from {{ ref('stg_cryptoquant__daily_metric_vintages') }}
),

vintages_unioned as (
    -- scope: '' for a series of every symbol (macro), else the CryptoQuant exchange
    select
        vendor,
        '' as scope,
        symbol as series,
        observation_date,
        observed_value,
        available_at,
        is_synthetic,
        ingested_at
    from fred_vintages
    union all
    select
        vendor,
        '' as scope,
        symbol as series,
        trade_date as observation_date,
        close as observed_value,
        available_at,
        is_synthetic,
        ingested_at
    from alphavantage_bars
    union all
    select
        vendor,
        symbol as scope,
        metric as series,
        observation_date,
        observed_value,
        available_at,
        is_synthetic,
        ingested_at
    from cryptoquant_vintages
),

vintages as (
    select
        *,
        {{ epoch_days('observation_date') }} as observation_day
    from vintages_unioned
    {%- if window_start is not none %}
    -- the observation days a state from window_start can read (state_day - lookback_days <
    -- observation_day), in days since the epoch
    where {{ epoch_days('observation_date') }}
        > cast(floor({{ epoch_seconds(timestamp_literal(window_start)) }} / 86400) as {{ dbt.type_bigint() }}) - {{ lookback_days }}
    {%- endif %}
),

states as (
    -- every vintage starts a state, whichever day it revises
    select distinct
        vendor,
        scope,
        series,
        available_at as state_at,
        cast(floor({{ epoch_seconds('available_at') }} / 86400) as {{ dbt.type_bigint() }}) as state_day
    from vintages_unioned
    where {{ at_or_after('available_at', window_start) }}
),

known_vintages as (
    select
        states.vendor,
        states.scope,
        states.series,
        states.state_at,
        vintages.observation_date,
        vintages.observation_day,
        vintages.observed_value,
        vintages.is_synthetic,
        row_number() over (
            partition by states.vendor, states.scope, states.series, states.state_at, vintages.observation_day
            order by vintages.available_at desc, vintages.ingested_at desc
        ) as vintage_rank
    from states
    inner join vintages
        on
            states.vendor = vintages.vendor
            and states.scope = vintages.scope
            and states.series = vintages.series
            and states.state_at >= vintages.available_at
            and states.state_day - {{ lookback_days }} < vintages.observation_day
),

observations_ranked as (
    select
        *,
        row_number() over (
            partition by vendor, scope, series, state_at
            order by observation_day desc
        ) as observation_rank
    from known_vintages
    where vintage_rank = 1 and observed_value is not null
),

states_summarised as (
    select
        vendor,
        scope,
        series,
        state_at,
        max(case when observation_rank = 1 then observation_date end) as observation_date,
        max(case when observation_rank = 1 then observation_day end) as observation_day,
        max(case when observation_rank = 1 then observed_value end) as value_last,
        max(case when observation_rank = 2 then observed_value end) as value_lag_1,
        max(case when observation_rank = 6 then observed_value end) as value_lag_5,
        max(case when observation_rank = 8 then observed_value end) as value_lag_7,
        count(case when observation_rank <= {{ zscore_observations }} then observed_value end) as zscore_count,
        avg(case when observation_rank <= {{ zscore_observations }} then observed_value end) as zscore_mean,
        stddev_samp(case when observation_rank <= {{ zscore_observations }} then observed_value end)
            as zscore_sd,
        max(case when is_synthetic then 1 else 0 end) = 1 as has_synthetic_input
    from observations_ranked
    group by vendor, scope, series, state_at
),

final as (
    select
        vendor,
        scope,
        series,
        state_at,
        observation_date,
        observation_day,
        value_last,
        value_last - value_lag_1 as change_1,
        case when value_last > 0 and value_lag_1 > 0 then ln(value_last / value_lag_1) end
            as ln_change_1,
        case when value_last > 0 and value_lag_5 > 0 then ln(value_last / value_lag_5) end
            as ln_change_5,
        case when value_last > 0 and value_lag_7 > 0 then ln(value_last / value_lag_7) end
            as ln_change_7,
        case
            when zscore_count = {{ zscore_observations }}
                then {{ zscore('value_last', 'zscore_mean', 'zscore_sd') }}
        end as zscore,
        has_synthetic_input
    from states_summarised
)

select * from final
