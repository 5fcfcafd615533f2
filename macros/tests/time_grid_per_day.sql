{#- Monotonic time on a fixed grid: every time is a multiple of interval_seconds from the epoch;
    when dense, consecutive rows of a symbol are exactly one interval apart (no hole, no repeat);
    available_at (when given) = time + interval. For sparse inputs (staging) repeats are left to
    the unique-key gate, so one fault fails one gate. -#}
{% test time_grid_per_day(model, time_column, interval_seconds, dataset, dense=true, available_column=none) %}
{{ config(tags=['gate']) }}

with

rows_ordered as (

    select
        symbol,
        {{ time_column }} as row_time,
        {%- if available_column is not none %}
        {{ available_column }} as row_available_at,
        {%- endif %}
        lag({{ time_column }}) over (
            partition by symbol
            order by {{ time_column }}
        ) as previous_row_time
    from {{ gate_relation(model, time_column) }}

),

violations as (

    select
        symbol,
        {{ utc_date('row_time') }} as day,
        sum(case when row_time != {{ time_bucket('row_time', interval_seconds) }} then 1 else 0 end)
            as off_grid_rows,
        {%- if dense %}
        sum(
            case
                when {{ seconds_between('previous_row_time', 'row_time') }} != {{ interval_seconds }}
                    then 1
                else 0
            end
        ) as step_rows,
        {%- else %}
        0 as step_rows,
        {%- endif %}
        {%- if available_column is not none %}
        sum(
            case
                when row_available_at != {{ timestamp_add_seconds('row_time', interval_seconds) }}
                    then 1
                else 0
            end
        ) as available_rows
        {%- else %}
        0 as available_rows
        {%- endif %}
    from rows_ordered
    group by symbol, {{ utc_date('row_time') }}

),

final as (

    select
        '{{ dataset }}' as dataset,
        symbol,
        day,
        cast(off_grid_rows + step_rows + available_rows as {{ dbt.type_bigint() }}) as failing_count,
        {{ gate_text('off_grid_rows') }} || ' rows off the {{ interval_seconds }} s grid, '
        || {{ gate_text('step_rows') }}
        || ' rows not one interval after the previous, '
        || {{ gate_text('available_rows') }} || ' rows with available_at != time + interval' as detail
    from violations
    where off_grid_rows + step_rows + available_rows > 0

)

select * from final
{% endtest %}
