{#- Start of the window an incremental vendor model (int_intraday_vendor_events_unioned,
    int_daily_series_vintages_resolved, int_intraday_vendor_metrics_as_of_bars_*,
    int_daily_series_as_of_bars_*) rebuilds, as text 'YYYY-MM-DD HH:MM:SS' (UTC), or none for a
    full build: the UTC day holding the oldest "newest `time_column` per `partition_by`" of the
    existing table minus `lookback_minutes` (as `incremental_window_start`, on whole days, which
    hold whole 5m and 1h bars), moved back `vendor_late_days` (default 7) more days.

    Why the extra days: a vendor row (a CryptoQuant or FRED vintage, a CoinGlass bar) changes
    only the rows whose available_at (or open_time) is at or after its own, so an incremental
    run equals a full refresh as long as every row landed since the last run is at or after
    the window start. CryptoQuant's available_at is the loader's first_seen_at (never before it
    landed), so a daily run always sees its vintages inside the window; but FRED's (Alpha
    Vantage's, CoinGlass's, CoinAPI's) available_at follows a publication rule, so a row landed
    late (a loader outage, a backfill) carries one in the past. Rows up to `vendor_late_days`
    late are applied; after a longer outage, `dbt build --select tag:vendors+ --full-refresh`
    (the vendor models and the marts that read them). A week of bars is 2,016 rows at 5m. -#}
{% macro vendor_window_start(time_column='open_time', partition_by='symbol') -%}
    {%- if not execute or not is_incremental() -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set lookback_seconds = (var('lookback_minutes') | int) * 60 -%}
    {%- set query -%}
        with newest as (
            select max({{ time_column }}) as newest_at
            from {{ this }}
            group by {{ partition_by }}
        )
        select
            {{ epoch_seconds(time_bucket(timestamp_add_seconds('min(newest_at)', -lookback_seconds), 86400)) }}
                as window_start_s
        from newest
    {%- endset -%}
    {%- set late_days = var('vendor_late_days', 7) | int -%}
    {%- if plan_mode() -%}
        {{ return(plan_value(query, -86400 * late_days)) }}
    {%- endif -%}
    {%- set start_s = run_query(query).columns[0].values()[0] -%}
    {%- if start_s is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set start = modules.datetime.datetime(1970, 1, 1)
        + modules.datetime.timedelta(seconds=(start_s | int) - 86400 * late_days) -%}
    {{ return(start.strftime('%Y-%m-%d %H:%M:%S')) }}
{%- endmacro %}
