-- One row per user and UTC day with at least one event (any event counts as activity): the
-- user is active that day.
with user_events as (

    select * from {{ ref('int_user_daily_events') }}

),

final as (

    select
        user_id,
        account_id,
        activity_date,
        sum(events) as events
    from user_events
    group by user_id, account_id, activity_date

)

select * from final
