{#- Whole seconds from start_ts to end_ts (bigint; negative when end is earlier). -#}
{% macro seconds_between(start_ts, end_ts) -%}
    {{ return(adapter.dispatch('seconds_between', 'btcfs')(start_ts, end_ts)) }}
{%- endmacro %}

{% macro default__seconds_between(start_ts, end_ts) -%}
    ({{ epoch_seconds(end_ts) }} - {{ epoch_seconds(start_ts) }})
{%- endmacro %}
