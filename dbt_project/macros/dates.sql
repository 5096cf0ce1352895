{#-
    Calendar helpers. DuckDB's date_trunc and date + interval return TIMESTAMP, so each helper
    casts back to DATE: month columns are DATEs everywhere in this project.
-#}

{#- First day of the month of a DATE or TIMESTAMP expression. -#}
{% macro month_start(expr) -%}
    cast(date_trunc('month', {{ expr }}) as date)
{%- endmacro %}

{#- Last day of the month of a DATE or TIMESTAMP expression. -#}
{% macro month_end(expr) -%}
    cast(last_day({{ expr }}) as date)
{%- endmacro %}

{#- A DATE moved by n calendar months; a day past the end of the target month is clamped to
    its last day (2024-02-29 + 12 months = 2025-02-28). -#}
{% macro add_months(expr, n) -%}
    {{ return(adapter.dispatch('add_months')(expr, n)) }}
{%- endmacro %}

{% macro default__add_months(expr, n) -%}
    cast({{ expr }} + to_months(cast({{ n }} as integer)) as date)
{%- endmacro %}

{#- Spark's add_months clamps the same way. -#}
{% macro spark__add_months(expr, n) -%}
    add_months(cast({{ expr }} as date), cast({{ n }} as int))
{%- endmacro %}

{#- A DATE moved by n days (n an integer expression). -#}
{% macro add_days(expr, n) -%}
    {{ return(adapter.dispatch('add_days')(expr, n)) }}
{%- endmacro %}

{% macro default__add_days(expr, n) -%}
    cast({{ expr }} + cast({{ n }} as integer) as date)
{%- endmacro %}

{#- Spark's date_add wants an INT. -#}
{% macro spark__add_days(expr, n) -%}
    date_add(cast({{ expr }} as date), cast({{ n }} as int))
{%- endmacro %}

{#- Days from DATE `start` to DATE `stop` (negative when stop is earlier), an integer. -#}
{% macro day_diff(start, stop) -%}
    {{ return(adapter.dispatch('day_diff')(start, stop)) }}
{%- endmacro %}

{% macro default__day_diff(start, stop) -%}
    (cast({{ stop }} as date) - cast({{ start }} as date))
{%- endmacro %}

{% macro spark__day_diff(start, stop) -%}
    datediff(cast({{ stop }} as date), cast({{ start }} as date))
{%- endmacro %}

{#- Month boundaries crossed from `start` to `stop` (DATEs or TIMESTAMPs): 2024-01-31 to
    2024-02-01 is 1. The same SQL on both engines. -#}
{% macro month_diff(start, stop) -%}
    ((year({{ stop }}) * 12 + month({{ stop }})) - (year({{ start }}) * 12 + month({{ start }})))
{%- endmacro %}
