{#- `text` ('YYYY-MM-DD HH:MM:SS', UTC) moved by `seconds`; none stays none. -#}
{% macro shift_timestamp_text(text, seconds) -%}
    {%- if text is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- if is_plan_value(text) -%}
        {{ return(shift_plan_value(text, seconds)) }}
    {%- endif -%}
    {%- set moment = modules.datetime.datetime.strptime(text, '%Y-%m-%d %H:%M:%S')
        + modules.datetime.timedelta(seconds=seconds) -%}
    {{ return(moment.strftime('%Y-%m-%d %H:%M:%S')) }}
{%- endmacro %}

{#- `where`/`and` clause body limiting `column` to rows at or after `start_text`, or `true` for a
    full build (start_text none). -#}
{% macro at_or_after(column, start_text) -%}
    {%- if start_text is none -%}
        true
    {%- else -%}
        {{ column }} >= {{ timestamp_literal(start_text) }}
    {%- endif -%}
{%- endmacro %}
