{#-
    Schemas are exactly the configured names (`staging`, `intermediate`, `marts`), not dbt's
    default `<target schema>_<custom schema>` (`main_marts`). Nodes without a custom schema
    (test failures stored with --store-failures, for example) land in the target schema.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
