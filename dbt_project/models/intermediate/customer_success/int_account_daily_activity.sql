-- One row per account and UTC day with at least one event: events and active users (users with
-- at least one event that day).
with user_days as (

    select * from {{ ref('int_user_daily_activity') }}

),

final as (

    select
        account_id,
        activity_date,
        sum(events) as events,
        count(*)    as active_users
    from user_days
    group by account_id, activity_date

)

select * from final
