-- One row per account, UTC day and feature used that day, through the feature map (var
-- feature_map, from metrics/config/health_model.yaml): events and distinct users. Events that map
-- to no feature (login, onboarding milestones, names not in the map) are activity only and are
-- not here. A feature is core when any event mapped to it is core.
with user_events as (

    select * from {{ ref('int_user_daily_events') }}

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
        sum(user_events.events) as events
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
        sum(user_features.events) as events,
        count(*)                  as users
    from user_features
    inner join features
        on features.feature = user_features.feature
    group by user_features.account_id, user_features.activity_date, user_features.feature, features.is_core

)

select * from final
