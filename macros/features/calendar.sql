{#- Position in the week of a UTC epoch second as an angle in radians: 0 at Monday 00:00,
    2*pi a week later. 1970-01-01 was a Thursday, 3 days (259200 s) after a Monday. -#}
{% macro hour_of_week_angle(epoch_s) -%}
    (2 * acos(-1) * mod({{ epoch_s }} + 259200, 604800) / 604800)
{%- endmacro %}
