{#-
    Helpers of the customer-success models. The health model (metrics/config/health_model.yaml)
    reaches SQL only as the vars `health_model` and `feature_map`; these macros turn its lists
    into relations and its threshold lists into CASE expressions, so no threshold, window or
    points value is written in SQL.
-#}

{#-
    The metric configuration vars. Every dbt invocation passes them (metrics/dbt_vars.py); a run
    without them stops with this message instead of computing with missing thresholds. While
    dbt parses the project (no vars needed), they are none and the models render with empty
    lists and 0 windows, which only serves to find the refs.
-#}
{% macro cs_metric_var(name) -%}
    {%- set value = var(name, none) -%}
    {%- if value is none and execute -%}
        {{ exceptions.raise_compiler_error(
            "var '" ~ name ~ "' is not set: every dbt invocation passes the metric configuration"
            ~ " as vars (metrics/dbt_vars.py; by hand: dbt build --vars \"$(csw dbt-vars)\")"
        ) }}
    {%- endif -%}
    {{ return(value) }}
{%- endmacro %}

{% macro health_model() -%}
    {{ return(cs_metric_var('health_model')) }}
{%- endmacro %}

{#- An integer setting (a window in days, a count); 0 while dbt parses without vars. -#}
{% macro cs_int(value) -%}
    {{ return((value | int) if value is defined and value is not none else 0) }}
{%- endmacro %}

{#- A Python value as a SQL literal of `sql_type` (null for None). -#}
{% macro cs_literal(value, sql_type='string') -%}
    {%- if value is none -%}
        cast(null as {{ sql_type }})
    {%- elif value is sameas true or value is sameas false -%}
        cast({{ 'true' if value else 'false' }} as {{ sql_type }})
    {%- elif value is number -%}
        cast('{{ value }}' as {{ sql_type }})
    {%- else -%}
        cast('{{ value | string | replace("'", "''") }}' as {{ sql_type }})
    {%- endif -%}
{%- endmacro %}

{#- A threshold from the configuration as an exact DECIMAL literal (6 decimals are kept). -#}
{% macro cs_threshold(value) -%}
    cast('{{ "%.6f" | format((value | float) if value is defined and value is not none else 0) }}' as decimal(18, 6))
{%- endmacro %}

{#- A relation (subquery) of `rows` (a list of dicts) with `columns`, a list of
    [name, sql_type] pairs. An empty list gives an empty relation with the same columns. -#}
{% macro values_relation(rows, columns) -%}
    {%- if not rows -%}
        (select
            {%- for name, sql_type in columns %}
            cast(null as {{ sql_type }}) as {{ name }}{{ ',' if not loop.last }}
            {%- endfor %}
        where false)
    {%- else -%}
        (select * from (values
            {%- for row in rows %}
            ({%- for name, sql_type in columns -%}
                {{ cs_literal(row[name], sql_type) }}{{ ', ' if not loop.last }}
            {%- endfor -%}){{ ',' if not loop.last }}
            {%- endfor %}
        ) as v ({% for name, sql_type in columns %}{{ name }}{{ ', ' if not loop.last }}{% endfor %}))
    {%- endif -%}
{%- endmacro %}

{#- var('feature_map') as a relation: event_name, feature (null = activity only), is_core,
    counts_as_activity (true unless the event spec says `counts_as_activity: false`). -#}
{% macro feature_map_relation() -%}
    {%- set rows = [] -%}
    {%- for row in cs_metric_var('feature_map') or [] -%}
        {%- do rows.append({
            'event_name': row['event_name'],
            'feature': row['feature'],
            'is_core': row['is_core'],
            'counts_as_activity': row.get('counts_as_activity', true),
        }) -%}
    {%- endfor -%}
    {{ values_relation(
        rows,
        [['event_name', 'string'], ['feature', 'string'], ['is_core', 'boolean'],
         ['counts_as_activity', 'boolean']]
    ) }}
{%- endmacro %}

{#- The event names the configuration says are not activity (`counts_as_activity: false`),
    sorted: the activity facts leave their events out. -#}
{% macro non_activity_events() -%}
    {%- set names = [] -%}
    {%- for row in cs_metric_var('feature_map') or [] -%}
        {%- if row.get('counts_as_activity', true) is sameas false -%}
            {%- do names.append(row['event_name']) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(names | sort) }}
{%- endmacro %}

{#- SQL predicate: the event `column` counts as activity (true when every event does). -#}
{% macro counts_as_activity(column) -%}
    {%- set excluded = non_activity_events() -%}
    {%- if excluded -%}
        {{ column }} not in {{ sql_in_list(excluded) }}
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{#- health_model.tier_features as a relation: tier, feature (one row per included feature). -#}
{% macro tier_features_relation() -%}
    {%- set rows = [] -%}
    {%- set hm = health_model() or {'tier_features': {}} -%}
    {%- for tier, features in hm['tier_features'].items() -%}
        {%- for feature in features -%}
            {%- do rows.append({'tier': tier, 'feature': feature}) -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ values_relation(rows, [['tier', 'string'], ['feature', 'string']]) }}
{%- endmacro %}

{#- health_model.onboarding.stages as a relation: stage, stage_name. -#}
{% macro onboarding_stages_relation() -%}
    {%- set rows = [] -%}
    {%- set hm = health_model() or {'onboarding': {'stages': []}} -%}
    {%- for s in hm['onboarding']['stages'] -%}
        {%- do rows.append({'stage': s['stage'], 'stage_name': s['name']}) -%}
    {%- endfor -%}
    {{ values_relation(rows, [['stage', 'integer'], ['stage_name', 'string']]) }}
{%- endmacro %}

{#- ('a', 'b', ...) for an IN list of strings. -#}
{% macro sql_in_list(values) -%}
    ({%- for v in values -%}{{ cs_literal(v) }}{{ ', ' if not loop.last }}{%- endfor -%})
{%- endmacro %}

{#-
    The WHEN branches of a threshold list, tried in order (the first that matches wins):
        when <expr> <comparison> <value> [* <denominator>] then <points>
    With a denominator, `expr / denominator <comparison> value` is evaluated as
    `expr <comparison> value * denominator`, exactly (the caller guarantees denominator > 0), so
    a ratio exactly at a threshold never lands on the wrong side through rounding. Steps are dicts
    with the keys value_key (default `value`) and points_key (default `points`); `sign` = -1 turns
    the points into a deduction.
-#}
{% macro step_whens(expr, steps, comparison='>', denominator=none, value_key='value', points_key='points', sign=1) -%}
    {%- for step in steps %}
        when ({{ expr }}) {{ comparison }} {{ cs_threshold(step[value_key]) }}
            {%- if denominator is not none %} * ({{ denominator }}){% endif %}
            then {{ sign * step[points_key] }}
    {%- endfor %}
{%- endmacro %}

{#- A CASE giving the points of the first matching step, else `otherwise`. -#}
{% macro points_from_steps(expr, steps, otherwise, comparison='>', denominator=none, value_key='value', points_key='points', sign=1) -%}
    case
        {{- step_whens(expr, steps, comparison, denominator, value_key, points_key, sign) }}
        else {{ otherwise }}
    end
{%- endmacro %}

{#- The sorted distinct positive integers of a list (window lengths, lookup offsets). -#}
{% macro cs_distinct_days(values) -%}
    {%- set ints = [] -%}
    {%- for v in values -%}{%- do ints.append(cs_int(v)) -%}{%- endfor -%}
    {%- set out = [] -%}
    {%- for v in ints | sort -%}
        {%- if v > 0 and v not in out -%}{%- do out.append(v) -%}{%- endif -%}
    {%- endfor -%}
    {{ return(out) }}
{%- endmacro %}

{#- The window lengths (days) for which int_account_signal_history keeps distinct active users
    (`active_users_<n>d`) and distinct core features (`core_features_<n>d`). -#}
{% macro active_user_windows() -%}
    {%- set hm = health_model() -%}
    {%- if hm is none -%}{{ return([]) }}{%- endif -%}
    {%- set lists = hm['lists'] -%}
    {{ return(cs_distinct_days([
        hm['health_score']['usage']['weekly_trend']['window_days'],
        hm['health_score']['financial']['seats']['window_days'],
        lists['expansion']['team_growth']['window_days'],
        lists['adoption_alerts']['activity_declining']['window_days'],
    ])) }}
{%- endmacro %}

{% macro core_feature_windows() -%}
    {%- set hm = health_model() -%}
    {%- if hm is none -%}{{ return([]) }}{%- endif -%}
    {{ return(cs_distinct_days([hm['health_score']['usage']['breadth']['window_days']])) }}
{%- endmacro %}

{#-
    Delta rows for "distinct keys with activity in the `window_days` days to a date": from a
    relation with one row per key and active day (columns partition_cols, key_col, date_col,
    previous_on = the key's previous active day, next_on = its next one), a +1 on the first day a
    key enters the window and a -1 on the day it leaves it. A key active on day a is in the window
    of every date a .. a + n - 1; it enters at a unless it was already in (previous_on >= a - n),
    and leaves at a + n unless it is active again by then (next_on <= a + n). The running sum of
    the deltas per partition, by date, is the distinct count on every date.
-#}
{% macro window_entry_exit_deltas(relation, partition_cols, date_col, window_days, delta_col) -%}
    select
        {{ partition_cols | join(', ') }},
        {{ date_col }} as changed_on,
        1 as {{ delta_col }}
    from {{ relation }}
    where previous_on is null or {{ date_col }} - previous_on > {{ window_days }}

    union all

    select
        {{ partition_cols | join(', ') }},
        {{ date_col }} + {{ window_days }} as changed_on,
        -1 as {{ delta_col }}
    from {{ relation }}
    where next_on is null or next_on - {{ date_col }} > {{ window_days }}
{%- endmacro %}
