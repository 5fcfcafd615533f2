with

open_interest as (

    select * from {{ ref('stg_binance__open_interest') }}

),

period_floored as (

    select
        symbol,
        measured_at as reported_measured_at,
        {{ time_bucket('measured_at', var('open_interest_period_seconds')) }} as measured_at,
        sum_open_interest,
        sum_open_interest_value
    from open_interest
    where symbol in ({{ symbols_sql_list() }})

),

previous_measurement_found as (

    select
        *,
        lag(measured_at) over (
            partition by symbol
            order by measured_at
        ) as previous_measured_at
    from period_floored

),

final as (

    select
        symbol,
        measured_at,
        {{ timestamp_add_seconds('measured_at', var('open_interest_available_lag_seconds')) }}
            as available_at,
        reported_measured_at,
        sum_open_interest,
        sum_open_interest_value,
        -- Periods missing between this measurement and the previous one (0 when contiguous).
        cast(
            coalesce(
                {{ seconds_between('previous_measured_at', 'measured_at') }}
                / {{ checked_number(var('open_interest_period_seconds'), 'open_interest_period_seconds') }} - 1,
                0
            ) as {{ dbt.type_bigint() }}
        ) as missing_periods_before
    from previous_measurement_found

)

select * from final
