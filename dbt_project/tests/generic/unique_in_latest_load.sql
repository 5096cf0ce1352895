{#- Uniqueness of column_name among the rows of the lake partitions that the latest load of
    lake_table wrote (raw.lake_files, the lake's registry: one loaded_at per load of a table).

    Ingestion writes an event only when its key is in no partition yet (an anti-join against
    the whole lake, ingestion/loader.py), so a duplicate can only come in with a load. The
    partitions that load wrote are named as constants, so DuckDB reads them alone (hive
    partition pruning); a check over every event is a group-by of the whole lake on every
    run (3-6 s of a daily run at 10 million events, growing with history). When ingestion ran
    more than once between two dbt builds, the loads before the latest rest on the anti-join
    alone. Without a registry (raw.events as a table: a warehouse or fixture from before the
    lake) every row is checked. -#}
{% test unique_in_latest_load(model, column_name, lake_table, partition_column='event_date') %}
{%- set partitions = none -%}
{%- if execute -%}
    {%- set registry = adapter.get_relation(
        database=target.database, schema='raw', identifier='lake_files') -%}
    {%- if registry is not none -%}
        {%- set found = run_query(
            "select distinct event_date from " ~ registry
            ~ " where table_name = '" ~ lake_table ~ "' and loaded_at = (select max(loaded_at)"
            ~ " from " ~ registry ~ " where table_name = '" ~ lake_table ~ "')"
            ~ " order by 1") -%}
        {%- set partitions = found.columns[0].values() -%}
    {%- endif -%}
{%- endif %}

select
    {{ column_name }} as unique_field,
    count(*) as n_records
from {{ model }}
where {{ column_name }} is not null
{%- if partitions is not none %}
    and {{ partition_column }} in (
        {%- for day in partitions %}date '{{ day }}'{{ ", " if not loop.last }}{% else %}null{% endfor -%}
    )
{%- endif %}
group by {{ column_name }}
having count(*) > 1
{% endtest %}
