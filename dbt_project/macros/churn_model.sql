{#-
    The learned churn model's tables (schema `ml`) as dbt reads them. metrics/churn_model.py
    creates them on its first fit (Dagster asset ml/churn_model), so a warehouse that was never
    fitted has none: these macros read such a source as an empty relation with the same typed
    columns, and every build passes before the first fit (no probabilities, no error).
-#}

{#- The columns dbt reads of each ml table, [name, sql_type] (the fit writes more). -#}
{% macro churn_model_source_columns(table_name) -%}
    {%- set columns = {
        'churn_model_fits': [
            ['churn_model_version', 'varchar'],
            ['fitted_at', 'timestamp'],
            ['as_of', 'date'],
            ['horizon_days', 'integer'],
            ['health_model_version', 'varchar'],
            ['validation_from', 'date'],
            ['accepted', 'boolean'],
            ['intercept', 'double'],
            ['calibration_slope', 'double'],
            ['calibration_intercept', 'double'],
        ],
        'churn_model_coefficients': [
            ['churn_model_version', 'varchar'],
            ['feature', 'varchar'],
            ['transform', 'varchar'],
            ['fill_value', 'double'],
            ['center', 'double'],
            ['scale', 'double'],
            ['coefficient', 'double'],
        ],
    } -%}
    {{ return(columns[table_name]) }}
{%- endmacro %}

{#-
    An ml table as a subquery of its typed columns, or an empty relation with the same columns
    when the table does not exist yet. source('ml', 'churn_model_fits') is always called, so dbt
    (and Dagster's lineage: meta.dagster.asset_key ml/churn_model) know the dependency either
    way; ml.churn_model_coefficients, written by the same asset, is read next to it (one source
    per asset key: dagster-dbt refuses two sources with the same key).
-#}
{% macro churn_model_source(table_name) -%}
    {%- set relation = source('ml', 'churn_model_fits').incorporate(path={'identifier': table_name}) -%}
    {%- set columns = churn_model_source_columns(table_name) -%}
    {%- set found = none -%}
    {%- if execute -%}
        {%- set found = adapter.get_relation(
            database=relation.database, schema=relation.schema, identifier=relation.identifier
        ) -%}
    {%- endif -%}
    {%- if found is not none -%}
        (select
            {%- for name, sql_type in columns %}
            cast({{ name }} as {{ sql_type }}) as {{ name }}{{ ',' if not loop.last }}
            {%- endfor %}
        from {{ relation }})
    {%- else -%}
        {{ values_relation([], columns) }}
    {%- endif -%}
{%- endmacro %}
