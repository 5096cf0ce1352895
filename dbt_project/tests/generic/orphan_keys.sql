{#-
    Warns with one row per value of `column_name` that `to`.`field` does not have, with the number
    of rows of `model` using it (macros/orphan_keys.sql). Used with
    `config: {severity: warn, store_failures: true}`: orphans are counted and named (stored in
    schema audit, table = the test's name) without failing the build.
-#}
{% test orphan_keys(model, column_name, to, field) %}

{{ orphan_keys_sql(model, column_name, to, field) }}

{% endtest %}
