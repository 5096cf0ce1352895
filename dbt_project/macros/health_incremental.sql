{#-
    The incremental health chain (docs/health-model.md "Incremental runs").

    int_account_health_spine, int_account_health_measures and int_account_health_scores are
    incremental on (account_id, as_of_date). A health value on date D depends only on input rows
    dated on or before D, so a change invalidates, per account, every date from the earliest date
    it touches: int_account_health_invalidation lists those (account_id, recompute_from) pairs
    (account_id null: every account; recompute_from null: from the beginning). Each model's
    pre-hook (health_incremental_delete) deletes
      * the invalidated pairs,
      * the rows of dates no longer in int_account_health_dates, or whose is_reported changed
        (a new as_of: the old as_of stops being reported, a helper date becomes reported),
    and the model then inserts (append) the pairs it lacks: the spine the dates it has no row
    for plus the invalidated pairs, measures and scores the pairs of their upstream they lack.
    The result is the table a full build gives. Every row carries built_from_loaded_at (the
    largest _loaded_at of the inputs it was built from), health_model_version, health_config_hash
    and code_version; a different configuration or code version, a missing column or table makes
    the invalidation name every account (a full recompute).
-#}

{#- The models of the chain, whose code versions (var code_versions, computed by the
    orchestration from the prepared manifest) are stamped on every row as one hash. -#}
{% macro health_chain_models() %}
    {{- return([
        'int_account_signal_history',
        'int_account_health_dates',
        'int_account_health_invalidation',
        'int_account_health_spine',
        'int_account_health_measures',
        'int_account_health_scores',
    ]) }}
{% endmacro %}

{#- The incremental models whose rows carry the bookkeeping columns (the churn features follow
    the chain: macros/churn_model.sql). -#}
{% macro health_incremental_models() %}
    {{- return([
        'int_account_signal_history', 'int_account_health_spine', 'int_account_health_measures',
        'int_account_health_scores', 'int_account_churn_features',
    ]) }}
{% endmacro %}

{#- md5 of the chain's code versions (all '' without the var: nothing rebuilt because of code). -#}
{% macro health_chain_code_version() %}
    {%- set versions = var('code_versions', {}) or {} %}
    {%- set parts = [] %}
    {%- for m in health_chain_models() %}
        {%- do parts.append(m ~ '=' ~ (versions.get(m, '') or '')) %}
    {%- endfor %}
    {{- return(local_md5(parts | join(';'))) }}
{% endmacro %}

{#- md5 of every setting the chain's rows depend on: the health model, the feature map and the
    events that do not count as activity (health_model_version covers them when the vars come from
    metrics/dbt_vars.py; the hash also covers vars passed by hand). -#}
{% macro health_config_hash() %}
    {{- return(local_md5(
        tojson(cs_metric_var('health_model'), sort_keys=True) ~ '|' ~ feature_map_hash() ~ '|' ~ activity_events_hash()
    )) }}
{% endmacro %}

{#- The bookkeeping columns of an incremental health model's rows (`inputs_loaded_at`: SQL of
    the largest _loaded_at the row was built from; `with_version`: also health_model_version,
    for a model that does not carry it already). -#}
{% macro health_bookkeeping_columns(inputs_loaded_at, with_version=true) -%}
    {%- if with_version %}
    cast({{ cs_literal(health_model_version().get('version')) }} as string) as health_model_version,
    {%- endif %}
    cast({{ inputs_loaded_at }} as timestamp)                              as built_from_loaded_at,
    cast({{ cs_literal(health_config_hash()) }} as string)                as health_config_hash,
    cast({{ cs_literal(health_chain_code_version()) }} as string)         as code_version
{%- endmacro %}

{#- SQL: the largest _loaded_at this run's rows are built from: the invalidation's (every row of
    it has the same), or, when nothing was invalidated, the table's own watermark. -#}
{% macro health_inputs_loaded_at(invalidation) -%}
    coalesce(
        (select max(inputs_loaded_at) from {{ invalidation }}),
        {%- if is_incremental() %}
        (select max(built_from_loaded_at) from {{ this }}),
        {%- endif %}
        cast(null as timestamp)
    )
{%- endmacro %}

{#- SQL predicate: the pair (`account_id`, `on_date`, SQL) is invalidated: on or after the
    earliest date of the rows for every account (account_id null), or of its account's row
    (recompute_from null: from the beginning). Written as an uncorrelated scalar plus an
    equality semi-join, not one `exists` with `account_id is null or ...`: DuckDB runs that as a
    nested loop (57 s against 0.9 s over 6M history rows and 13,000 invalidated accounts at L).
    `signal_history`: only the rows that reach the signal history. -#}
{% macro health_invalidated_pair(invalidation, account_id, on_date, signal_history=false) -%}
    {%- set only = ' and inv.reaches_signal_history' if signal_history else '' -%}
    (
        {{ on_date }} >= coalesce(
            (
                select min(coalesce(inv.recompute_from, cast('1900-01-01' as date)))
                from {{ invalidation }} as inv
                where inv.account_id is null{{ only }}
            ),
            cast('9999-12-31' as date)
        )
        or exists (
            select 1 from {{ invalidation }} as inv
            where inv.account_id = {{ account_id }}
              and {{ on_date }} >= coalesce(inv.recompute_from, cast('1900-01-01' as date)){{ only }}
        )
    )
{%- endmacro %}

{#- SQL predicate: the row `alias` (account_id, as_of_date) is invalidated. -#}
{% macro health_invalidated(invalidation, alias) -%}
    {{ health_invalidated_pair(invalidation, alias ~ '.account_id', alias ~ '.as_of_date') }}
{%- endmacro %}

{#- Pre-hook of the incremental health models: delete the invalidated rows and the rows of dates
    not (or no longer so) in the current date set. Nothing on a first or full-refresh build. -#}
{% macro health_incremental_delete(dates, invalidation) %}
    {%- if execute and is_incremental() %}
        delete from {{ this }} as t
        where {{ health_invalidated(invalidation, 't') }}
           or not exists (
                select 1 from {{ dates }} as d
                where d.as_of_date = t.as_of_date and d.is_reported = t.is_reported
           )
    {%- endif %}
{% endmacro %}

{#- Why every account must be recomputed (none: the tables are usable): a chain table missing,
    without the bookkeeping columns, built under another configuration or code, or without rows
    to take a watermark from. Otherwise the watermark: the smallest of the tables' largest
    built_from_loaded_at (a run that failed halfway left the later tables older). Returns
    (reason, watermark). -#}
{% macro health_chain_state() %}
    {%- if not execute or flags.FULL_REFRESH %}
        {{- return(('full refresh', none)) }}
    {%- endif %}
    {%- set config_hash = health_config_hash() %}
    {%- set code_version = health_chain_code_version() %}
    {%- set watermarks = [] %}
    {%- for name in health_incremental_models() %}
        {%- set node = graph.nodes.values() | selectattr('resource_type', 'equalto', 'model') | selectattr('name', 'equalto', name) | first %}
        {#- the catalog, not the adapter's relation cache (which an earlier invocation in the same
            process may have left without the table) -#}
        {%- set columns = run_query(
            'select lower(column_name) from information_schema.columns'
            ~ ' where table_catalog = ' ~ cs_literal(node.database) ~ ' and table_schema = ' ~ cs_literal(node.schema)
            ~ ' and table_name = ' ~ cs_literal(node.alias)
        ).columns[0].values() | list %}
        {%- if not columns %}
            {{- return((name ~ ' does not exist yet', none)) }}
        {%- endif %}
        {%- set relation = api.Relation.create(database=node.database, schema=node.schema, identifier=node.alias) %}
        {%- set needed = ['built_from_loaded_at', 'health_config_hash', 'code_version'] %}
        {%- for column in needed + ([] if name == 'int_account_signal_history' else ['is_reported']) %}
            {%- if column not in columns %}
                {{- return((name ~ ' has no column ' ~ column, none)) }}
            {%- endif %}
        {%- endfor %}
        {%- set row = run_query(
            'select count(*) filter (where health_config_hash is distinct from ' ~ cs_literal(config_hash) ~ '),'
            ~ ' count(*) filter (where code_version is distinct from ' ~ cs_literal(code_version) ~ '),'
            ~ ' cast(max(built_from_loaded_at) as string) from ' ~ relation
        ).rows[0] %}
        {%- if row[0] > 0 %}
            {{- return((name ~ ' was built under another health model configuration', none)) }}
        {%- endif %}
        {%- if row[1] > 0 %}
            {{- return((name ~ ' was built by another code version', none)) }}
        {%- endif %}
        {%- if row[2] is none %}
            {{- return((name ~ ' has no watermark (no rows)', none)) }}
        {%- endif %}
        {%- do watermarks.append(row[2]) %}
    {%- endfor %}
    {{- return((none, watermarks | min)) }}
{% endmacro %}

{#- True when the invalidation names every account for the signal history (a full build of it;
    a change it does not read, such as FX rates, does not count). -#}
{% macro signal_history_every_account(invalidation) %}
    {%- if not execute %}
        {{- return(false) }}
    {%- endif %}
    {%- set n = run_query(
        'select count(*) from ' ~ invalidation ~ ' where account_id is null and reaches_signal_history'
    ).columns[0].values()[0] %}
    {{- return(n > 0) }}
{% endmacro %}

{#- Pre-hook of int_account_signal_history: delete the invalidated accounts' rows from their
    first date on (every row when every account is invalidated), for the changes it reads. -#}
{% macro signal_history_delete(invalidation) %}
    {%- if execute and is_incremental() %}
        delete from {{ this }} as t
        where {{ health_invalidated_pair(invalidation, 't.account_id', 't.changed_on', signal_history=true) }}
    {%- endif %}
{% endmacro %}

{#- Post-hook of int_account_signal_history: valid_until of the invalidated accounts' rows (the
    last kept row before the recomputed ones ends at the first new one). -#}
{% macro signal_history_valid_until(invalidation) %}
    {%- if execute and is_incremental() %}
        update {{ this }} as t
        set valid_until = n.next_on
        from (
            select
                account_id,
                changed_on,
                lead(changed_on) over (partition by account_id order by changed_on) as next_on
            from {{ this }}
            where account_id in (select account_id from {{ invalidation }} where reaches_signal_history)
        ) as n
        where t.account_id = n.account_id
          and t.changed_on = n.changed_on
          and t.valid_until is distinct from n.next_on
    {%- endif %}
{% endmacro %}

{#- int_account_monthly_adoption (incremental on (account_id, month)): what a run rebuilds, read
    before it changes anything (the pre-hook and the model's query both call it and get the same):
    `all` (no usable table, another configuration or code version), else `boundary` (the first
    month whose as_of cut may differ: the as_of month, or an earlier month a run built before its
    last day (built_as_of); every account's months from it on), `watermark` (the largest
    max_loaded_at: the account-months of daily-fact rows loaded after it are rebuilt) and `first`
    (the earliest month rebuilt: a constant bound that lets the scans of the daily facts skip the
    older row groups). -#}
{% macro monthly_adoption_plan(user_activity, feature_usage) %}
    {%- if not execute or not is_incremental() %}
        {{- return({'all': true}) }}
    {%- endif %}
    {%- set columns = adapter.get_columns_in_relation(this) | map(attribute='name') | map('lower') | list %}
    {%- for column in ['max_loaded_at', 'built_as_of', 'adoption_config_hash'] %}
        {%- if column not in columns %}
            {{- return({'all': true}) }}
        {%- endif %}
    {%- endfor %}
    {%- set row = run_query(
        'select count(*) filter (where adoption_config_hash is distinct from ' ~ cs_literal(monthly_adoption_config_hash()) ~ '),'
        ~ ' cast(max(max_loaded_at) as string),'
        ~ ' cast(least(' ~ month_start(as_of_date()) ~ ', min(month) filter (where built_as_of + 1 < cast(month + interval 1 month as date))) as string)'
        ~ ' from ' ~ this
    ).rows[0] %}
    {%- if row[0] > 0 or row[1] is none %}
        {{- return({'all': true}) }}
    {%- endif %}
    {%- set first = run_query(
        'select cast(least(' ~ cs_literal(row[2], 'date') ~ ', min(month)) as string) from ('
        ~ monthly_adoption_touched(row[1], user_activity, feature_usage) ~ ')'
    ).rows[0][0] %}
    {{- return({'all': false, 'watermark': row[1], 'boundary': row[2], 'first': first}) }}
{% endmacro %}

{#- md5 of what the monthly adoption rows depend on besides the facts: the feature map (is_core),
    the non-activity events, and the model's code version (var code_versions). -#}
{% macro monthly_adoption_config_hash() %}
    {%- set versions = var('code_versions', {}) or {} %}
    {{- return(local_md5(feature_map_hash() ~ '|' ~ activity_events_hash() ~ '|' ~ (versions.get('int_account_monthly_adoption', '') or ''))) }}
{% endmacro %}

{#- SQL: the (account_id, month) pairs with daily-fact rows (on or before as_of) loaded after the
    watermark. -#}
{% macro monthly_adoption_touched(watermark, user_activity, feature_usage) -%}
    select account_id, {{ month_start('activity_date') }} as month
    from {{ user_activity }}
    where max_loaded_at > timestamp '{{ watermark }}' and activity_date <= {{ as_of_date() }}
    union
    select account_id, {{ month_start('activity_date') }} as month
    from {{ feature_usage }}
    where max_loaded_at > timestamp '{{ watermark }}' and activity_date <= {{ as_of_date() }}
{%- endmacro %}

{#- Pre-hook of int_account_monthly_adoption: delete what the run rebuilds. -#}
{% macro monthly_adoption_delete(user_activity, feature_usage) %}
    {%- if execute and is_incremental() %}
        {%- set plan = monthly_adoption_plan(user_activity, feature_usage) %}
        {%- if plan['all'] %}
            delete from {{ this }}
        {%- else %}
            delete from {{ this }} as t
            where t.month >= date '{{ plan['boundary'] }}'
               or exists (
                    select 1 from ({{ monthly_adoption_touched(plan['watermark'], user_activity, feature_usage) }}) as touched
                    where touched.account_id = t.account_id and touched.month = t.month
               )
        {%- endif %}
    {%- endif %}
{% endmacro %}

{#- SQL: the `where` of an incremental health model's input keeping the (account_id, as_of_date)
    pairs of `alias` that this table lacks after its pre-hook's delete; nothing on a full build. -#}
{% macro pairs_this_table_lacks(alias) -%}
    {%- if is_incremental() %}
    where not exists (
        select 1 from {{ this }} as t
        where t.account_id = {{ alias }}.account_id and t.as_of_date = {{ alias }}.as_of_date
    )
    {%- endif %}
{%- endmacro %}

{#- SQL: the `and` of a monthly-adoption input (daily-fact rows `alias`) keeping the days to
    rebuild: on or after the plan's boundary month, or in an account-month with newly loaded
    rows (CTE `touched`); nothing when the plan rebuilds everything. -#}
{% macro monthly_adoption_rows_to_rebuild(plan, alias) -%}
    {%- if not plan['all'] %}
      and {{ alias }}.activity_date >= date '{{ plan['first'] }}'
      and (
        {{ alias }}.activity_date >= date '{{ plan['boundary'] }}'
        or exists (
            select 1 from touched
            where touched.account_id = {{ alias }}.account_id
              and touched.month = {{ month_start(alias ~ '.activity_date') }}
        )
      )
    {%- endif %}
{%- endmacro %}
