-- One row per account, UTC day and feature used that day, through the feature map (var
-- feature_map, from metrics/config/health_model.yaml): events and distinct users. Events that map
-- to no feature (login, onboarding milestones, names not in the map) are activity only and are
-- not here. A feature is core when any event mapped to it is core.
--
-- Incremental on activity_date, from int_user_daily_events (dates changed since its watermark).
-- The rows depend on the feature map, so each row carries the map's hash: after a change of
-- metrics/config/health_model.yaml the run rebuilds every date, and the pre-hook first deletes
-- the rows built under the old map (a date may have no feature under the new one).
{{
    config(
        materialized='incremental',
        tags=['daily_fact'],
        incremental_strategy=daily_fact_strategy(),
        unique_key='activity_date',
        partition_by=daily_fact_partitions(),
        on_schema_change='append_new_columns',
        pre_hook="{{ delete_rows_of_other_feature_map() }}",
    )
}}

{%- set date_ranges = [] %}
{%- if is_incremental() %}
    {%- set date_ranges = touched_daily_fact_ranges(
        ref('int_user_daily_events'),
        rebuild_all=built_with_other_config('feature_map_hash', feature_map_hash()),
    ) %}
{%- endif %}

with user_events as (

    select * from {{ ref('int_user_daily_events') }}
    {%- if is_incremental() %}
    where {{ in_date_ranges('activity_date', date_ranges) }}
    {%- endif %}

),

feature_map as (

    select * from {{ feature_map_relation() }}

),

features as (

    select
        feature,
        bool_or(is_core) as is_core
    from feature_map
    where feature is not null
    group by feature

),

user_features as (

    -- one row per user, day and feature first: counting those rows is cheaper than a distinct
    select
        user_events.account_id,
        user_events.activity_date,
        feature_map.feature,
        user_events.user_id,
        sum(user_events.events) as events,
        max(user_events.max_loaded_at) as max_loaded_at
    from user_events
    inner join feature_map
        on feature_map.event_name = user_events.event_name
    where feature_map.feature is not null
    group by user_events.account_id, user_events.activity_date, feature_map.feature, user_events.user_id

),

final as (

    select
        user_features.account_id,
        user_features.activity_date,
        user_features.feature,
        features.is_core,
        cast(sum(user_features.events) as bigint) as events,
        count(*)                  as users,
        max(user_features.max_loaded_at) as max_loaded_at,
        '{{ feature_map_hash() }}' as feature_map_hash
    from user_features
    inner join features
        on features.feature = user_features.feature
    group by user_features.account_id, user_features.activity_date, user_features.feature, features.is_core

)

select * from final
