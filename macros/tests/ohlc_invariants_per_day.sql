{#- OHLC invariants: low <= open, close <= high; prices > 0 (unless positive_prices=false, for
    the premium index); volumes and trades >= 0 and taker volumes within volumes (when
    has_volumes). One failing row per symbol, day and broken invariant. -#}
{% test ohlc_invariants_per_day(model, time_column, dataset, positive_prices=true, has_volumes=true) %}
{{ config(tags=['gate']) }}

{%- set checks = [
    ('high < low', 'high < low'),
    ('high < open or high < close', 'high < open or high < close'),
    ('low > open or low > close', 'low > open or low > close'),
] -%}
{%- if positive_prices -%}
    {%- do checks.append(('price <= 0', 'low <= 0')) -%}
{%- endif -%}
{%- if has_volumes -%}
    {%- do checks.append(('negative volume or trades', 'volume < 0 or quote_volume < 0 or trade_count < 0')) -%}
    {%- do checks.append(('taker volume above volume', 'taker_buy_base_volume > volume or taker_buy_quote_volume > quote_volume or taker_buy_base_volume < 0 or taker_buy_quote_volume < 0')) -%}
{%- endif %}

with

per_day as (

    select
        symbol,
        {{ utc_date(time_column) }} as day,
        {%- for name, condition in checks %}
        sum(case when {{ condition }} then 1 else 0 end) as bad_{{ loop.index }}{{ "," if not loop.last }}
        {%- endfor %}
    from {{ gate_relation(model, time_column) }}
    group by symbol, {{ utc_date(time_column) }}

),

violations as (

    {% for name, condition in checks %}
    select
        symbol,
        day,
        '{{ name }}' as invariant,
        bad_{{ loop.index }} as bad_rows
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
        {{ gate_text('bad_rows') }} || ' bars with ' || invariant as detail
    from violations
    where bad_rows > 0

)

select * from final
{% endtest %}
