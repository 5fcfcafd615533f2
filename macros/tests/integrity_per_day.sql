{#- One pass over a dense bar table for four gates at once (each failing row names its check):
    unique key, no NULLs, monotonic time on the interval grid (no hole, no repeat, available_at =
    time + interval) and the OHLC invariants. Used on the 1m spines and the bars marts, where a
    test per check would scan the same table four times on every build. -#}
{% test integrity_per_day(model, key_columns, time_column, interval_seconds, dataset, not_null_columns, available_column='available_at') %}
{{ config(tags=['gate']) }}

{%- set checks = [
    ('duplicated rows on key (' ~ key_columns | join(', ') ~ ')', 'key_row > 1'),
    ('rows off the ' ~ interval_seconds ~ ' s grid', 'row_time != ' ~ time_bucket('row_time', interval_seconds)),
    ('rows not one interval after the previous', seconds_between('previous_row_time', 'row_time') ~ ' != ' ~ interval_seconds),
    ('rows with available_at != time + interval', available_column ~ ' != ' ~ timestamp_add_seconds('row_time', interval_seconds)),
    ('bars with high < low', 'high < low'),
    ('bars with high < open or high < close', 'high < open or high < close'),
    ('bars with low > open or low > close', 'low > open or low > close'),
    ('bars with price <= 0', 'low <= 0'),
    ('bars with negative volume or trades', 'volume < 0 or quote_volume < 0 or trade_count < 0'),
    ('bars with taker volume above volume', 'taker_buy_base_volume > volume or taker_buy_quote_volume > quote_volume or taker_buy_base_volume < 0 or taker_buy_quote_volume < 0'),
] -%}
{%- for column in not_null_columns -%}
    {%- do checks.append(('NULL values in column ' ~ column, column ~ ' is null')) -%}
{%- endfor %}

with

rows_ordered as (

    select
        *,
        {{ time_column }} as row_time,
        lag({{ time_column }}) over (
            partition by symbol
            order by {{ time_column }}
        ) as previous_row_time,
        row_number() over (
            partition by {{ key_columns | join(', ') }}
            order by {{ time_column }}
        ) as key_row
    from {{ gate_relation(model, time_column) }}

),

per_day as (

    select
        symbol,
        {{ utc_date('row_time') }} as day,
        {%- for name, condition in checks %}
        sum(case when {{ condition }} then 1 else 0 end) as check_{{ loop.index }}{{ "," if not loop.last }}
        {%- endfor %}
    from rows_ordered
    group by symbol, {{ utc_date('row_time') }}

),

violations as (

    {% for name, condition in checks %}
    select
        symbol,
        day,
        '{{ name }}' as check_name,
        check_{{ loop.index }} as bad_rows
    from per_day
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

final as (

    select
        '{{ dataset }}' as dataset,
        symbol,
        day,
        cast(bad_rows as {{ dbt.type_bigint() }}) as failing_count,
        {{ gate_text('bad_rows') }} || ' ' || check_name as detail
    from violations
    where bad_rows > 0

)

select * from final
{% endtest %}
