{#- Start of the window an incremental run recomputes, as text 'YYYY-MM-DD HH:MM:SS' (UTC), or
    none for a full build. It is the start of the `bucket_seconds` bucket holding the oldest
    "newest row per symbol" of the existing table minus the `lookback_minutes` var, so every
    bucket that new rows (or a late correction within the look-back) can touch is rebuilt whole.
    Symbols new to the table need --full-refresh (their history before the window is skipped).
    Compiled for the update plan, the window is looked up when the plan runs (update_plan.sql). -#}
{% macro incremental_window_start(time_column, bucket_seconds) -%}
    {%- if not execute or not is_incremental() -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set lookback_seconds = (var('lookback_minutes') | int) * 60 -%}
    {%- set query -%}
        with newest as (
            select symbol, max({{ time_column }}) as newest_at
            from {{ this }}
            group by symbol
        )
        select
            {{ epoch_seconds(time_bucket(timestamp_add_seconds('min(newest_at)', -lookback_seconds), bucket_seconds)) }}
                as window_start_s
        from newest
    {%- endset -%}
    {%- if plan_mode() -%}
        {{ return(plan_value(query)) }}
    {%- endif -%}
    {%- set start_s = run_query(query).columns[0].values()[0] -%}
    {%- if start_s is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set start = modules.datetime.datetime(1970, 1, 1) + modules.datetime.timedelta(seconds=start_s | int) -%}
    {{ return(start.strftime('%Y-%m-%d %H:%M:%S')) }}
{%- endmacro %}

{#- The configured symbols as a SQL list body: 'BTCUSDT', 'ETHUSDT'. -#}
{% macro symbols_sql_list() -%}
    {%- for symbol in var('symbols') -%}
        {{ checked_symbol(symbol) }}{{ ", " if not loop.last }}
    {%- endfor -%}
{%- endmacro %}
