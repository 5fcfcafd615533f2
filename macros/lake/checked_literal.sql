{#- A var's text as a SQL string literal, or a compile error naming the var when the text is
    not what the var allows. dbt vars are SQL text (`--vars` on the command line, a build job
    of the API), so every text var a model inlines goes through here: `pattern` is a Python
    regex the whole value must match, and no allowed value holds a quote. -#}
{% macro checked_literal(value, pattern, var_name) -%}
    {%- set text = value | string -%}
    {%- if modules.re.fullmatch(pattern, text) is none -%}
        {{ exceptions.raise_compiler_error("var " ~ var_name ~ ": " ~ (text[:60] | tojson) ~ " does not match " ~ pattern) }}
    {%- endif -%}
    '{{ text }}'
{%- endmacro %}

{#- A warehouse symbol as a SQL literal: the Binance loader's rule (ASCII capitals and digits,
    at most 20), the one the API's BuildVars holds `symbols` to. -#}
{% macro checked_symbol(symbol) -%}
    {{ return(checked_literal(symbol, '[A-Z0-9]{1,20}', 'symbols')) }}
{%- endmacro %}

{#- A numeric var, unchanged, or a compile error naming the var when it is not a number (a
    text var inlined bare would be SQL). -#}
{% macro checked_number(value, var_name) -%}
    {%- if value is not number or value is boolean -%}
        {{ exceptions.raise_compiler_error("var " ~ var_name ~ ": " ~ ((value | string)[:60] | tojson) ~ " is not a number") }}
    {%- endif -%}
    {{ return(value) }}
{%- endmacro %}
