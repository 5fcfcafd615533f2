{#-
    Forward-looking targets of 5-minute bars: forward log returns and triple-barrier labels.
    Everything that sets a barrier (close, ATR) is known at t; everything that decides the label
    comes from bars t+1 .. t+H. Rules and edge cases are in _labels__models.yml.
-#}

{{
    config(
        materialized='incremental',
        unique_key=['symbol', 'open_time'],
        on_schema_change='fail',
    )
}}

{%- set interval_seconds = 300 -%}
{%- set atr_bars = var('labels_atr_bars') | int -%}
{%- set atr_multiple = var('labels_barrier_atr_multiple') | float -%}
{%- set horizon_bars = var('labels_vertical_barrier_bars') | int -%}
{%- set forward_returns = {
    'fwd_ret_5m': 1,
    'fwd_ret_1h': 12,
    'fwd_ret_4h': 48,
    'fwd_ret_1d': 288,
} -%}
{%- set longest_bars = [forward_returns.values() | max, horizon_bars] | max -%}

{#- Incremental runs rewrite the rows whose longest forward return could still have been unknown
    (NULL) last time, and read the ATR's history before them. -#}
{%- set output_start = shift_timestamp_text(
    incremental_window_start('open_time', 86400),
    -longest_bars * interval_seconds,
) -%}
{%- set read_start = shift_timestamp_text(output_start, -2 * atr_bars * interval_seconds) -%}

with

bars as (
    select * from {{ ref('bars_5m') }}
    where {{ at_or_after('open_time', read_start) }}
),

prices as (
    select
        symbol,
        open_time,
        available_at,
        epoch_s,
        cast(high as {{ type_double() }}) as high,
        cast(low as {{ type_double() }}) as low,
        cast(close as {{ type_double() }}) as close,
        cast(lag(close, 1) over (partition by symbol order by open_time) as {{ type_double() }})
            as previous_close
    from bars
),

true_range_computed as (
    select
        *,
        case
            when previous_close is not null
                then greatest(high - low, abs(high - previous_close), abs(low - previous_close))
        end as true_range
    from prices
),

barriers_set as (
    select
        *,
        {%- for column, bars_ahead in forward_returns.items() %}
        ln(lead(close, {{ bars_ahead }}) over (partition by symbol order by open_time) / close)
            as {{ column }},
        {%- endfor %}
        {{ rolling_aggregate('avg', 'true_range', atr_bars) }} as atr
    from true_range_computed
),

barrier_paths as (
    -- each bar's next {{ horizon_bars }} bars, as LEADs over one sort rather than a join of
    -- every bar to each step ahead: bars are a dense grid, so the k-th row ahead is the bar
    -- k steps ahead, and the rows ahead in the frame are the bars observed
    select
        symbol,
        open_time,
        atr,
        count(*) over (
            partition by symbol order by open_time
            rows between 1 following and {{ horizon_bars }} following
        ) as bars_observed,
        -- the first bar ahead whose high (low) reaches the upper (lower) barrier
        case
            {%- for bars_ahead in range(1, horizon_bars + 1) %}
            when
                lead(high, {{ bars_ahead }}) over (partition by symbol order by open_time)
                >= close + {{ atr_multiple }} * atr
                then {{ bars_ahead }}
            {%- endfor %}
        end as upper_touch_bars,
        case
            {%- for bars_ahead in range(1, horizon_bars + 1) %}
            when
                lead(low, {{ bars_ahead }}) over (partition by symbol order by open_time)
                <= close - {{ atr_multiple }} * atr
                then {{ bars_ahead }}
            {%- endfor %}
        end as lower_touch_bars
    from barriers_set
),

barriers_touched as (
    select
        symbol,
        open_time,
        bars_observed,
        upper_touch_bars,
        lower_touch_bars
    from barrier_paths
    where atr is not null and bars_observed > 0
),

touches_classified as (
    select
        barriers_set.*,
        barriers_touched.bars_observed,
        case
            when
                barriers_touched.upper_touch_bars is null
                and barriers_touched.lower_touch_bars is null
                then 'vertical'
            when
                barriers_touched.lower_touch_bars is null
                or barriers_touched.upper_touch_bars < barriers_touched.lower_touch_bars
                then 'upper'
            when
                barriers_touched.upper_touch_bars is null
                or barriers_touched.lower_touch_bars < barriers_touched.upper_touch_bars
                then 'lower'
            else 'both'
        end as touch_type,
        coalesce(
            case
                when barriers_touched.upper_touch_bars <= barriers_touched.lower_touch_bars
                    then barriers_touched.upper_touch_bars
                else barriers_touched.lower_touch_bars
            end,
            barriers_touched.upper_touch_bars,
            barriers_touched.lower_touch_bars,
            {{ horizon_bars }}
        ) as bars_to_touch
    from barriers_set
    inner join barriers_touched
        on
            barriers_set.symbol = barriers_touched.symbol
            and barriers_set.open_time = barriers_touched.open_time
),

final as (
    select
        symbol,
        open_time,
        available_at,
        close,
        {%- for column in forward_returns %}
        {{ column }},
        {%- endfor %}
        atr,
        close + {{ atr_multiple }} * atr as upper_barrier,
        close - {{ atr_multiple }} * atr as lower_barrier,
        case touch_type
            when 'upper' then 1
            when 'lower' then -1
            else 0
        end as barrier_label,
        touch_type,
        touch_type = 'both' as is_both_barriers_touched,
        cast(bars_to_touch as {{ dbt.type_int() }}) as bars_to_touch,
        -- the touching (or vertical) bar's available_at: bars are a dense grid
        {{ timestamp_add_seconds('available_at', 'bars_to_touch * ' ~ interval_seconds) }} as t1
    from touches_classified
    where
        -- the whole vertical horizon is in the data (no label from a truncated path)
        bars_observed = {{ horizon_bars }}
        and {{ at_or_after('open_time', output_start) }}
)

select * from final
