-- Product adoption per account and calendar month, from the daily facts dated on or before the
-- reporting date (var as_of; the reporting month is month to date): distinct active users, user
-- active days (one per user and day with an event), active days of the account, events, and
-- distinct core features used. Only account-months with activity appear.
{%- set as_of = as_of_date() %}

with user_days as (

    select * from {{ ref('int_user_daily_activity') }}
    where activity_date <= {{ as_of }}

),

feature_days as (

    select * from {{ ref('int_account_daily_feature_usage') }}
    where activity_date <= {{ as_of }}
      and is_core

),

users_monthly as (

    select
        account_id,
        {{ month_start('activity_date') }} as month,
        count(distinct user_id)            as active_users,
        count(*)                           as user_active_days,
        count(distinct activity_date)      as active_days,
        sum(events)                        as events
    from user_days
    group by account_id, {{ month_start('activity_date') }}

),

features_monthly as (

    select
        account_id,
        {{ month_start('activity_date') }} as month,
        count(distinct feature)            as core_features_used
    from feature_days
    group by account_id, {{ month_start('activity_date') }}

),

final as (

    select
        cast(users_monthly.account_id as varchar)                        as account_id,
        cast(users_monthly.month as date)                                as month,
        cast(users_monthly.active_users as bigint)                       as active_users,
        cast(users_monthly.user_active_days as bigint)                   as user_active_days,
        cast(users_monthly.active_days as bigint)                        as active_days,
        cast(users_monthly.events as bigint)                             as events,
        cast(coalesce(features_monthly.core_features_used, 0) as bigint) as core_features_used
    from users_monthly
    left join features_monthly
        on  features_monthly.account_id = users_monthly.account_id
        and features_monthly.month = users_monthly.month

)

select * from final
