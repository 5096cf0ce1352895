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
    cast({{ expr }} + to_months(cast({{ n }} as integer)) as date)
{%- endmacro %}
