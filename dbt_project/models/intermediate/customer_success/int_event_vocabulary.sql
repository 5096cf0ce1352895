-- One row per event name seen in the warehouse, checked against the configured vocabulary (var
-- feature_map, the `events` of the health model): its events, accounts and days, whether the
-- configuration knows it and whether it counts as activity. Read from the daily event fact (one
-- row per user, day and event name), never from the raw events, so the events are not scanned a
-- second time. The vocabulary checks (tests/events_not_in_feature_map.sql,
-- tests/unmapped_event_share_within_limit.sql) read this small table.
with user_events as (

    select * from {{ ref('int_user_daily_events') }}

),

feature_map as (

    select * from {{ feature_map_relation() }}

),

by_name as (

    select
        event_name,
        sum(events)                as events,
        count(distinct account_id) as accounts,
        min(activity_date)         as first_seen_on,
        max(activity_date)         as last_seen_on
    from user_events
    group by event_name

),

final as (

    select
        by_name.event_name,
        by_name.events,
        by_name.accounts,
        by_name.first_seen_on,
        by_name.last_seen_on,
        feature_map.event_name is not null                  as is_known,
        feature_map.feature,
        coalesce(feature_map.counts_as_activity, true)      as counts_as_activity,
        by_name.events / sum(by_name.events) over ()        as share_of_events
    from by_name
    left join feature_map
        on feature_map.event_name = by_name.event_name

)

select * from final
