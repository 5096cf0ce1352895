{#-
    SQL that differs between the engines (CSW_ENGINE: duckdb or spark, profiles.yml), each written
    once here and dispatched on the target's adapter: `default__` is DuckDB's, `spark__` Spark's.
    Models call these instead of engine-specific functions, so each model is written once.
    The exact decimal arithmetic is in decimal_math.sql, the calendar helpers in dates.sql.
-#}

{#- Every month start from `first_month` through `last_month` (DATEs), one row each: a set-
    returning expression for a select list. -#}
{% macro month_series(first_month, last_month) -%}
    {{ return(adapter.dispatch('month_series')(first_month, last_month)) }}
{%- endmacro %}

{% macro default__month_series(first_month, last_month) -%}
    cast(unnest(generate_series({{ first_month }}, {{ last_month }}, interval 1 month)) as date)
{%- endmacro %}

{% macro spark__month_series(first_month, last_month) -%}
    explode(sequence({{ first_month }}, {{ last_month }}, interval 1 month))
{%- endmacro %}

{#- Integer division of a non-negative integer by a positive one (the quotient's integer part). -#}
{% macro integer_divide(dividend, divisor) -%}
    {{ return(adapter.dispatch('integer_divide')(dividend, divisor)) }}
{%- endmacro %}

{% macro default__integer_divide(dividend, divisor) -%}
    (({{ dividend }}) // ({{ divisor }}))
{%- endmacro %}

{% macro spark__integer_divide(dividend, divisor) -%}
    (({{ dividend }}) div ({{ divisor }}))
{%- endmacro %}

{#- Stops the query with `message` (a string expression) when it is evaluated. -#}
{% macro raise_error(message) -%}
    {{ return(adapter.dispatch('raise_error')(message)) }}
{%- endmacro %}

{% macro default__raise_error(message) -%}
    error({{ message }})
{%- endmacro %}

{% macro spark__raise_error(message) -%}
    raise_error({{ message }})
{%- endmacro %}

{#- A DATE or TIMESTAMP as 'YYYY-MM' text. -#}
{% macro year_month_text(expr) -%}
    {{ return(adapter.dispatch('year_month_text')(expr)) }}
{%- endmacro %}

{% macro default__year_month_text(expr) -%}
    strftime({{ expr }}, '%Y-%m')
{%- endmacro %}

{% macro spark__year_month_text(expr) -%}
    date_format({{ expr }}, 'yyyy-MM')
{%- endmacro %}

{#- Aggregate: the distinct non-null values of a text expression, sorted, joined by
    `separator` (a SQL string literal); null when there is none. -#}
{% macro sorted_distinct_join(expr, separator) -%}
    {{ return(adapter.dispatch('sorted_distinct_join')(expr, separator)) }}
{%- endmacro %}

{% macro default__sorted_distinct_join(expr, separator) -%}
    string_agg(distinct {{ expr }}, {{ separator }} order by {{ expr }})
{%- endmacro %}

{% macro spark__sorted_distinct_join(expr, separator) -%}
    case
        when size(collect_set({{ expr }})) > 0
            then array_join(array_sort(collect_set({{ expr }})), {{ separator }})
    end
{%- endmacro %}

{#-
    The raw layer (schema `raw`, the sources of models/staging/_sources.yml). On DuckDB ingestion
    writes it into the warehouse file itself, so there is nothing to do. On Spark every source is a
    view over the Parquet that ingestion writes beside the warehouse file: the events lake's Hive
    partitions and the entity tables' exports, both at <warehouse dir>/lake/<system>/<table>
    (ingestion/lake.py, ingestion/parquet_export.py). A source with no Parquet yet is an error
    naming the folder: a model must never read a raw table that is silently empty. (The other
    sources, schema `ml`, are written by Python into the DuckDB file and not read on Spark yet.)
    Runs on-run-start (dbt_project.yml).
-#}
{% macro register_raw_sources() -%}
    {{ return(adapter.dispatch('register_raw_sources')()) }}
{%- endmacro %}

{% macro default__register_raw_sources() -%}
{%- endmacro %}

{% macro spark__register_raw_sources() -%}
    {%- if execute -%}
        {%- set lake = env_var('CSW_WAREHOUSE_PATH', '../.csw/warehouse.duckdb').rsplit('/', 1)[0] ~ '/lake' -%}
        {%- do run_query('create database if not exists raw') -%}
        {%- for source in graph.sources.values() | selectattr('schema', 'equalto', 'raw') | sort(attribute='unique_id') -%}
            {%- set folder = lake ~ '/' ~ source.source_name ~ '/' ~ source.name -%}
            {%- do run_query(
                'create or replace view ' ~ source.schema ~ '.' ~ source.identifier
                ~ ' as select * from parquet.`' ~ folder ~ '`'
            ) -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}

{#- dbt's cast() on Spark, which builds the typed empty row a model contract is checked against:
    the contracts (the marts' YAML) say `varchar`, which Spark accepts only with a length; its
    text type is `string`. Every other type name is the same on both engines. -#}
{% macro spark__cast(field, type) -%}
    {%- set spark_type = 'string' if type | trim | lower == 'varchar' else type -%}
    cast({{ field }} as {{ spark_type }})
{%- endmacro %}

{#- A JSON value: DuckDB's JSON type; text on Spark, which has none (its JSON functions read
    text). -#}
{% macro cast_json(expr) -%}
    {{ return(adapter.dispatch('cast_json')(expr)) }}
{%- endmacro %}

{% macro default__cast_json(expr) -%}
    cast({{ expr }} as json)
{%- endmacro %}

{% macro spark__cast_json(expr) -%}
    cast({{ expr }} as string)
{%- endmacro %}
