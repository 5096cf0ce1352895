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
            ['churn_model_version', 'string'],
            ['fitted_at', 'timestamp'],
            ['as_of', 'date'],
            ['horizon_days', 'integer'],
            ['health_model_version', 'string'],
            ['validation_from', 'date'],
            ['accepted', 'boolean'],
            ['intercept', 'double'],
            ['calibration_slope', 'double'],
            ['calibration_intercept', 'double'],
        ],
        'churn_model_coefficients': [
            ['churn_model_version', 'string'],
            ['feature', 'string'],
            ['transform', 'string'],
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

{#-
    The incremental churn features (int_account_churn_features). A feature value on date D
    reads only rows dated on or before D, so the table follows the incremental health chain
    (macros/health_incremental.sql): it carries the chain's bookkeeping columns, takes part in
    its watermark (health_incremental_models), and its pre-hook deletes the pairs
    int_account_health_invalidation names and the dates no longer reported; the run computes the
    reported pairs the table lacks. The one input that depends on as_of is the set of event
    names (`event_30d:<name>`, the most frequent names up to as_of): when it differs from the
    set the table holds, every row is deleted and the table rebuilt.
-#}

{#- SQL: the event names that get an `event_<window>d:` feature: every name seen on or before
    as_of, the `max_names` most frequent (then by name) when there are more. -#}
{% macro churn_event_names_sql(user_daily_events, max_names) -%}
    select event_name
    from {{ user_daily_events }}
    where activity_date <= {{ as_of_date() }}
    group by event_name
    order by sum(events) desc, event_name
    limit {{ max_names }}
{%- endmacro %}

{#- True when the table's event features (those of its latest date) are not the features of
    the current event names: the run rebuilds every row. -#}
{% macro churn_event_names_changed(names_sql, prefix) %}
    {%- if not execute or not is_incremental() %}
        {{- return(false) }}
    {%- endif %}
    {%- set held %}
        select distinct feature
        from {{ this }}
        where feature like {{ cs_literal(prefix ~ '%') }}
          and as_of_date = (select max(as_of_date) from {{ this }})
    {%- endset %}
    {%- set wanted %}
        select {{ cs_literal(prefix) }} || event_name as feature from ({{ names_sql }})
    {%- endset %}
    {%- set differ = run_query(
        'select (select count(*) from ((' ~ held ~ ') except (' ~ wanted ~ ')))'
        ~ ' + (select count(*) from ((' ~ wanted ~ ') except (' ~ held ~ ')))'
    ).columns[0].values()[0] %}
    {{- return(differ > 0) }}
{% endmacro %}

{#- Pre-hook of int_account_churn_features: every row when the event names changed, else the
    invalidated pairs and the dates no longer reported (health_incremental_delete). -#}
{% macro churn_features_delete(dates, invalidation, names_sql, prefix) %}
    {%- if execute and is_incremental() %}
        {%- if churn_event_names_changed(names_sql, prefix) %}
            delete from {{ this }}
        {%- else %}
            {{ health_incremental_delete(dates, invalidation) }}
        {%- endif %}
    {%- endif %}
{% endmacro %}

{#- The churn features' fixed window (days to the date, independent of the health model: the
    backtest's baseline) and ceiling on event names. -#}
{% macro churn_window_days() %}{{ return(30) }}{% endmacro %}
{% macro churn_max_event_names() %}{{ return(200) }}{% endmacro %}
{% macro churn_event_prefix() %}{{ return('event_' ~ churn_window_days() ~ 'd:') }}{% endmacro %}
