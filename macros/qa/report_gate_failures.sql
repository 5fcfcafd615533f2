{% macro report_gate_failures(results) %}
{% endmacro %}
