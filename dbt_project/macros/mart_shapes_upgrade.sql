{#-
    Upgrade in place (on-run-start, dbt_project.yml) of the marts that keep rows across runs: the
    backtest marts (every health-model version's rows, never fully refreshed) and
    dim_health_model_versions. A warehouse built before the marts' naming convention and the split
    of totals from per-segment rows (issue 15, docs/marts.md) has, in schema marts:
      - fct_health_backtest*, each with a `segment` column holding `all` rows and per-segment rows,
        and the columns evaluated_as_of and (fct_health_backtest) worse_than_baseline;
      - dim_health_model_versions with first_scored_as_of.
    This renames those columns, moves the per-segment rows (segment <> 'all') of each backtest mart
    to its `_by_segment` table (created with the same columns when it does not exist yet), then
    drops the overall table's `segment` column, keeping every version's rows. It does nothing on a
    new warehouse or one already upgraded (it only acts on the old columns it finds).
-#}
{% macro upgrade_mart_shapes() -%}
    {%- if execute -%}
        {%- set state = namespace(changed=false) -%}
        {%- set renames = {
            'fct_health_backtest': {'evaluated_as_of': 'evaluated_as_of_date', 'worse_than_baseline': 'is_worse_than_baseline'},
            'fct_health_backtest_bands': {'evaluated_as_of': 'evaluated_as_of_date'},
            'fct_health_backtest_deciles': {'evaluated_as_of': 'evaluated_as_of_date'},
            'fct_health_backtest_calibration': {'evaluated_as_of': 'evaluated_as_of_date'},
            'dim_health_model_versions': {'first_scored_as_of': 'first_scored_as_of_date'},
        } -%}
        {%- for table, columns in renames.items() -%}
            {%- set relation = adapter.get_relation(database=target.database, schema='marts', identifier=table) -%}
            {%- if relation is not none -%}
                {%- set existing = adapter.get_columns_in_relation(relation) | map(attribute='name') | map('lower') | list -%}
                {%- for old, new in columns.items() if old in existing and new not in existing -%}
                    {%- do log('upgrade_mart_shapes: ' ~ relation ~ ': column ' ~ old ~ ' -> ' ~ new, info=true) -%}
                    {%- do run_query('alter table ' ~ relation ~ ' rename column ' ~ old ~ ' to ' ~ new) -%}
                    {%- set state.changed = true -%}
                {%- endfor -%}
                {%- if table.startswith('fct_health_backtest') and 'segment' in existing -%}
                    {%- do upgrade_split_segment_rows(relation, table) -%}
                    {%- set state.changed = true -%}
                {%- endif -%}
            {%- endif -%}
        {%- endfor -%}
        {#- run_query opened the transaction of these statements; a hook does not commit it -#}
        {%- if state.changed -%}
            {%- do adapter.commit() -%}
        {%- endif -%}
    {%- endif -%}
    select 1
{%- endmacro %}

{#- Moves the segment <> 'all' rows of the old-shape `relation` to `<table>_by_segment` and drops
    its segment column (upgrade_mart_shapes commits the whole upgrade at once). -#}
{% macro upgrade_split_segment_rows(relation, table) -%}
    {%- set columns = adapter.get_columns_in_relation(relation) | map(attribute='name') | list -%}
    {%- set column_list = columns | join(', ') -%}
    {%- set target_relation = adapter.get_relation(database=target.database, schema='marts', identifier=table ~ '_by_segment') -%}
    {%- set by_segment = relation.incorporate(path={'identifier': table ~ '_by_segment'}, type='table') -%}
    {%- set moved = run_query('select count(*) from ' ~ relation ~ " where segment <> 'all'").columns[0].values()[0] -%}
    {%- do log('upgrade_mart_shapes: ' ~ relation ~ ': ' ~ moved ~ " per-segment rows -> " ~ by_segment ~ ", column segment dropped", info=true) -%}
    {%- set sql -%}
        {% if target_relation is none -%}
        create table {{ by_segment }} as
        select {{ column_list }} from {{ relation }} where segment <> 'all';
        {%- else -%}
        insert into {{ by_segment }} by name
        select {{ column_list }} from {{ relation }} where segment <> 'all';
        {%- endif %}
        delete from {{ relation }} where segment <> 'all';
        alter table {{ relation }} drop column segment;
    {%- endset -%}
    {%- do run_query(sql) -%}
    {%- if target_relation is none -%}
        {#- dbt listed the relations before this hook: tell its cache the table now exists, so the
            incremental model appends to it instead of creating it -#}
        {%- do adapter.cache_added(by_segment) -%}
    {%- endif -%}
{%- endmacro %}
