{#-
    Incremental daily facts (docs/health-model.md "Incremental event facts").

    A daily fact is rebuilt date by date (delete+insert on its date column): a run finds the dates
    whose inputs were loaded after the fact's watermark (the largest max_loaded_at it holds) and
    rebuilds exactly those dates from all their inputs. The dates are read first and written into
    the model's query as literal ranges of contiguous dates, so the scans prune by zonemap.
-#}

{#- How a daily fact replaces its touched dates: delete+insert on DuckDB; on Spark, whose Parquet
    tables take no DELETE, insert_overwrite of the dates' partitions (dynamic partition overwrite
    replaces exactly the partitions the query returns, which is what delete+insert on
    activity_date does). -#}
{% macro daily_fact_strategy() -%}
    {{- return('insert_overwrite' if target.type == 'spark' else 'delete+insert') -}}
{%- endmacro %}

{#- The partition columns of a daily fact: activity_date on Spark (the unit insert_overwrite
    replaces); none on DuckDB. -#}
{% macro daily_fact_partitions() -%}
    {{- return(['activity_date'] if target.type == 'spark' else none) -}}
{%- endmacro %}

{#- The largest max_loaded_at of this model's table as text; none when the table has no such
    column (built by an older version: rebuild every date) or no rows. -#}
{% macro daily_fact_watermark() %}
    {%- set columns = adapter.get_columns_in_relation(this) | map(attribute='name') | map('lower') | list %}
    {%- if 'max_loaded_at' not in columns %}
        {{- return(none) }}
    {%- endif %}
    {%- set value = run_query('select cast(max(max_loaded_at) as string) from ' ~ this).columns[0].values()[0] %}
    {{- return(value) }}
{% endmacro %}

{#- Contiguous dates of the one-column query `dates_sql` (column activity_date) as a list of
    (first date, day after the last date) pairs, in date order. -#}
{% macro date_ranges_of(dates_sql) %}
    {%- set ranges_sql %}
        with touched as (
            {{ dates_sql }}
        ),
        islands as (
            select
                activity_date,
                activity_date - cast(row_number() over (order by activity_date) as integer) as island
            from touched
        )
        select
            cast(min(activity_date) as string) as first_date,
            cast(max(activity_date) + 1 as string) as after_last_date
        from islands
        group by island
        order by first_date
    {%- endset %}
    {%- set ranges = [] %}
    {%- for row in run_query(ranges_sql).rows %}
        {%- do ranges.append((row[0], row[1])) %}
    {%- endfor %}
    {{- return(ranges) }}
{% endmacro %}

{#- The date ranges an incremental run of a daily fact built from another daily fact (`upstream`,
    with activity_date and max_loaded_at) rebuilds: the dates of upstream rows newer than this
    model's watermark. `rebuild_all`: every upstream date (the configuration changed). Only
    meaningful when is_incremental(). -#}
{% macro touched_daily_fact_ranges(upstream, rebuild_all=false) %}
    {%- if not execute %}
        {{- return([]) }}
    {%- endif %}
    {%- set watermark = none if rebuild_all else daily_fact_watermark() %}
    {%- set dates_sql %}
        select distinct activity_date from {{ upstream }}
        {%- if watermark is not none %}
        where max_loaded_at > timestamp '{{ watermark }}'
        {%- endif %}
    {%- endset %}
    {{- return(date_ranges_of(dates_sql)) }}
{% endmacro %}

{#- SQL predicate: `column` falls in one of the ranges (none: false). `literal` is the type of the
    range literals, matching the column (date or timestamp) so the comparison prunes. -#}
{% macro in_date_ranges(column, ranges, literal='date') -%}
    {%- for first_date, after_last_date in ranges %}
        ({{ column }} >= {{ literal }} '{{ first_date }}' and {{ column }} < {{ literal }} '{{ after_last_date }}')
        {{ 'or' if not loop.last }}
    {%- else %}
        false
    {%- endfor %}
{%- endmacro %}

{#- True when this model's table holds rows built under another configuration: `column` differs
    from `value` (the hash of the configuration the rows depend on). -#}
{% macro built_with_other_config(column, value) %}
    {%- if not execute or not is_incremental() %}
        {{- return(false) }}
    {%- endif %}
    {%- set columns = adapter.get_columns_in_relation(this) | map(attribute='name') | map('lower') | list %}
    {%- if column not in columns %}
        {{- return(true) }}
    {%- endif %}
    {%- set stale = run_query(
        'select count(*) from ' ~ this ~ ' where ' ~ column ~ " is distinct from '" ~ value ~ "'"
    ).columns[0].values()[0] %}
    {{- return(stale > 0) }}
{% endmacro %}

{#- Pre-hook of int_account_daily_feature_usage: delete the rows built under another feature map
    (nothing when the map is unchanged or the table is new). -#}
{% macro delete_rows_of_other_feature_map() %}
    {{- delete_rows_of_other_config('feature_map_hash', feature_map_hash()) }}
{% endmacro %}

{#- Pre-hook of a daily fact whose rows depend on a configuration: delete the rows whose `column`
    (the configuration's hash) is not `value`; every row when the table has no such column. -#}
{% macro delete_rows_of_other_config(column, value) %}
    {{- return(adapter.dispatch('delete_rows_of_other_config')(column, value)) }}
{% endmacro %}

{#- Spark: no DELETE on Parquet. Rows of another configuration mean the model rebuilds every
    date (built_with_other_config), so the pre-hook empties the table: a date with no row under
    the new configuration must not keep its old rows, which insert_overwrite would leave. -#}
{% macro spark__delete_rows_of_other_config(column, value) %}
    {%- if built_with_other_config(column, value) %}
        truncate table {{ this }}
    {%- endif %}
{% endmacro %}

{% macro default__delete_rows_of_other_config(column, value) %}
    {%- if execute and is_incremental() %}
        {%- set columns = adapter.get_columns_in_relation(this) | map(attribute='name') | map('lower') | list %}
        {%- if column in columns %}
            delete from {{ this }} where {{ column }} is distinct from '{{ value }}'
        {%- else %}
            delete from {{ this }}
        {%- endif %}
    {%- endif %}
{% endmacro %}

{#- md5 of the events that do not count as activity: the activity facts' rows carry it, and
    rows built under another list are deleted and their dates rebuilt. -#}
{% macro activity_events_hash() %}
    {{- return(local_md5(tojson(non_activity_events()))) }}
{% endmacro %}

{#- md5 of the configured feature map (var feature_map): int_account_daily_feature_usage's rows
    carry it, and rows of another map are rebuilt. -#}
{% macro feature_map_hash() %}
    {{- return(local_md5(tojson(cs_metric_var('feature_map'), sort_keys=True))) }}
{% endmacro %}
