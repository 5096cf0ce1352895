{#-
    The version of the health model a run scores with: var health_model_version, computed once
    by metrics/dbt_vars.py (model_version): the sha256 of the validated model as canonical JSON,
    its first 12 hex digits (`version`), the model's optional `name` and its YAML (`yaml_text`).
    Every score, list and alert row names it; marts.dim_health_model_versions keeps each one.
-#}

{% macro health_model_version() -%}
    {{ return(cs_metric_var('health_model_version') or {}) }}
{%- endmacro %}

{#- The two columns every versioned row carries, from the var. -#}
{% macro health_model_version_columns() -%}
    {%- set v = health_model_version() -%}
    {{ cs_literal(v.get('version')) }} as health_model_version,
    {{ cs_literal(v.get('name')) }} as health_model_name
{%- endmacro %}
