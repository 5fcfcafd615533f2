with

funding_rates as (

    select * from {{ ref('stg_binance__funding_rates') }}

),

hour_floored as (

    select
        symbol,
        reported_funding_at,
        {{ time_bucket('reported_funding_at', 3600) }} as funding_at,
        funding_rate,
        mark_price,
        funding_interval_hours
    from funding_rates
    where symbol in ({{ symbols_sql_list() }})

),

previous_event_found as (

    select
        *,
        lag(funding_at) over (
            partition by symbol
            order by funding_at
        ) as previous_funding_at
    from hour_floored

),

final as (

    select
        symbol,
        funding_at,
        {{ timestamp_add_seconds('funding_at', var('funding_available_lag_seconds')) }} as available_at,
        reported_funding_at,
        funding_rate,
        mark_price,
        -- The archive states the interval; REST does not: use the observed spacing, else the var.
        cast(
            coalesce(
                funding_interval_hours,
                {{ seconds_between('previous_funding_at', 'funding_at') }} / 3600,
                {{ checked_number(var('funding_interval_hours_default'), 'funding_interval_hours_default') }}
            ) as {{ dbt.type_int() }}
        ) as funding_interval_hours,
        previous_funding_at
    from previous_event_found

)

select * from final
