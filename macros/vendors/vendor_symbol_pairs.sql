{#- The var `vendor_symbols` as a relation (symbol, vendor_symbol, preference): which vendor
    rows belong to each warehouse symbol. kind 'coinglass': the coin (preference 0) then the
    warehouse symbol itself (1, how the loader lands every CoinGlass dataset); 'cryptoquant':
    the CryptoQuant exchange whose BTC flows apply; 'coinapi_spot': the CoinAPI spot symbol id.
    Only the symbols the warehouse builds (var `symbols`). -#}
{% macro vendor_symbol_pairs(kind) -%}
    {%- set pairs = [] -%}
    {%- for symbol in var('symbols') -%}
        {%- set known = var('vendor_symbols', {}).get(symbol, {}) -%}
        {%- if kind == 'coinglass' -%}
            {%- if known.get('coin') %}{% do pairs.append((symbol, known['coin'], 0)) %}{% endif -%}
            {%- do pairs.append((symbol, symbol, 1)) -%}
        {%- elif kind in ('cryptoquant', 'coinapi_spot') -%}
            {%- if known.get(kind) %}{% do pairs.append((symbol, known[kind], 0)) %}{% endif -%}
        {%- else -%}
            {{ exceptions.raise_compiler_error("vendor_symbol_pairs: unknown kind " ~ kind) }}
        {%- endif -%}
    {%- endfor -%}
    {%- for symbol, vendor_symbol, preference in pairs %}
    select
        {{ checked_symbol(symbol) }} as symbol,
        {{ checked_literal(vendor_symbol, '[A-Za-z0-9_.-]{1,64}', 'vendor_symbols') }} as vendor_symbol,
        {{ preference }} as preference
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- else %}
    select
        cast(null as {{ dbt.type_string() }}) as symbol,
        cast(null as {{ dbt.type_string() }}) as vendor_symbol,
        0 as preference
    where false
    {%- endfor %}
{%- endmacro %}
