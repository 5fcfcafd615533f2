{#- Window helpers for the feature and label marts. Every mart is one series per symbol ordered
    by open_time on a dense (gap-filled) bar grid, so a window of n bars is a ROWS frame. -#}

{#- `over (...)` of a trailing window of `bars` rows ending at the current row. -#}
{% macro trailing_rows(bars) -%}
    over (partition by symbol order by open_time rows between {{ bars - 1 }} preceding and current row)
{%- endmacro %}

{#- `function(expression)` over the trailing `bars` rows, NULL unless the window is full: all
    of its rows have a value (a partial window at the start of a series never leaks into a
    published row). `full_when` replaces that count by a cheaper condition known to be
    equivalent (e.g. `bar_number > 5` for returns on the dense spot grid). -#}
{% macro rolling_aggregate(function, expression, bars, full_when=none) -%}
    case
        when {% if full_when is none -%}
            count({{ expression }}) {{ trailing_rows(bars) }} = {{ bars }}
        {%- else -%}
            {{ full_when }}
        {%- endif %}
            then {{ function }}({{ expression }}) {{ trailing_rows(bars) }}
    end
{%- endmacro %}

{#- Exponential moving average with span `span` (alpha = 2 / (span + 1)) as a finite weighted
    sum over the trailing `bars` rows: weight alpha * (1 - alpha)^k for lag k, renormalised to
    sum to 1. The weight left out, (1 - alpha)^bars, bounds the truncation error relative to the
    infinite EMA: |finite - infinite| <= (1 - alpha)^bars * (max - min of the series). With span
    20 and 100 bars it is 4.5e-5. LAG is a navigation function: it takes no frame. -#}
{% macro finite_ema(expression, span, bars, full_when=none) -%}
    {%- set alpha = 2.0 / (span + 1) -%}
    {%- set kept = 1.0 - (1.0 - alpha) ** bars -%}
    case
        when {% if full_when is none -%}
            count({{ expression }}) {{ trailing_rows(bars) }} = {{ bars }}
        {%- else -%}
            {{ full_when }}
        {%- endif %} then
            {%- for lag in range(bars) %}
            {{ "+ " if not loop.first }}{{ alpha * (1.0 - alpha) ** lag / kept }} * {% if lag == 0 -%}
                {{ expression }}
            {%- else -%}
                lag({{ expression }}, {{ lag }}) over (partition by symbol order by open_time)
            {%- endif -%}
            {%- endfor %}
    end
{%- endmacro %}

{#- x clipped to [lower, upper]; NULL when x or a bound is NULL, or when `valid_when` (the
    bounds' window lies inside the input's observed history) does not hold. CASE rather than
    LEAST/GREATEST: DuckDB's skip NULLs, BigQuery's return NULL. -#}
{% macro winsorise(expression, lower, upper, valid_when='true') -%}
    case
        when not coalesce({{ valid_when }}, false) then null
        when {{ lower }} is null or {{ upper }} is null then null
        when {{ expression }} < {{ lower }} then {{ lower }}
        when {{ expression }} > {{ upper }} then {{ upper }}
        else {{ expression }}
    end
{%- endmacro %}

{#- `values`.`column` clipped to `params`.`column`_lower / _upper (winsorise): the day's bounds
    of int_feature_zscore_params, in the params model itself and in the feature marts. -#}
{% macro clipped_to_day_bounds(column, values='derivatives_computed', params='zscore_params') -%}
    {{ winsorise(values ~ '.' ~ column, params ~ '.' ~ column ~ '_lower', params ~ '.' ~ column ~ '_upper') }}
{%- endmacro %}

{#- (x - mean) / sd, from a trailing mean and sample standard deviation computed beforehand
    (int_feature_zscore_params: per input and day). A constant window (sd <= 1e-12 of
    the mean's size, e.g. a funding rate that did not move for 30 days) gives 0, never a division
    by zero; NULL when x is NULL. -#}
{% macro zscore(expression, mean, sd) -%}
    case
        when {{ expression }} is null then null
        when {{ sd }} <= 1e-12 * abs({{ mean }}) then 0
        else ({{ expression }} - {{ mean }}) / {{ sd }}
    end
{%- endmacro %}

{#- A plain trailing z-score of an optional input over `bars` rows (sample sd; the zscore rules
    for a constant window), NULL while the window holds fewer than `min_values` values of it or
    when the input is NULL at the row. -#}
{% macro optional_zscore(expression, bars, min_values) -%}
    case
        when count({{ expression }}) {{ trailing_rows(bars) }} >= {{ min_values }}
            then {{ zscore(
                expression,
                'avg(' ~ expression ~ ') ' ~ trailing_rows(bars),
                'stddev_samp(' ~ expression ~ ') ' ~ trailing_rows(bars),
            ) }}
    end
{%- endmacro %}
