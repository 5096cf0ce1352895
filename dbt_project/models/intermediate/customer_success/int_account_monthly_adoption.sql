-- Product adoption per account and calendar month, from the daily facts dated on or before the
-- reporting date (var as_of; the reporting month is month to date): distinct active users, user
-- active days (one per user and day with an event), active days of the account, events, and
-- distinct core features used. Only account-months with activity appear.
--
-- Incremental on (account_id, month) (docs/health-model.md "Incremental runs",
-- macros/health_incremental.sql monthly_adoption_plan): a month's row depends only on that
-- month's daily-fact rows up to as_of. A run rebuilds, for every account, the months from the
-- earliest of the as_of month and any month built before its last day (built_as_of: the as_of of
-- the run that built the row; the as_of month is month to date), and the account-months with
-- daily-fact rows loaded after its watermark (max_loaded_at); the pre-hook deletes them first. Another feature map, non-activity list or code version
-- (adoption_config_hash), or a table without these columns: every row is rebuilt.
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='append_new_columns',
        pre_hook="{{ monthly_adoption_delete(ref('int_user_daily_activity'), ref('int_account_daily_feature_usage')) }}",
    )
}}
{%- set as_of = as_of_date() %}
{%- set plan = monthly_adoption_plan(ref('int_user_daily_activity'), ref('int_account_daily_feature_usage')) %}

with
{%- if not plan['all'] %}

touched as (

    {{ monthly_adoption_touched(plan['watermark'], ref('int_user_daily_activity'), ref('int_account_daily_feature_usage')) }}

),
{%- endif %}

user_days as (

    select * from {{ ref('int_user_daily_activity') }} as f
    where activity_date <= {{ as_of }}
    {{ monthly_adoption_rows_to_rebuild(plan, 'f') }}

),

feature_days as (

    select * from {{ ref('int_account_daily_feature_usage') }} as f
    where activity_date <= {{ as_of }}
      and is_core
    {{ monthly_adoption_rows_to_rebuild(plan, 'f') }}

),

users_monthly as (

    select
        account_id,
        {{ month_start('activity_date') }} as month,
        count(distinct user_id)            as active_users,
        count(*)                           as user_active_days,
        count(distinct activity_date)      as active_days,
        sum(events)                        as events,
        max(max_loaded_at)                 as max_loaded_at
    from user_days
    group by account_id, {{ month_start('activity_date') }}

),

features_monthly as (

    select
        account_id,
        {{ month_start('activity_date') }} as month,
        count(distinct feature)            as core_features_used,
        max(max_loaded_at)                 as max_loaded_at
    from feature_days
    group by account_id, {{ month_start('activity_date') }}

),

final as (

    select
        cast(users_monthly.account_id as string)                        as account_id,
        cast(users_monthly.month as date)                                as month,
        cast(users_monthly.active_users as bigint)                       as active_users,
        cast(users_monthly.user_active_days as bigint)                   as user_active_days,
        cast(users_monthly.active_days as bigint)                        as active_days,
        cast(users_monthly.events as bigint)                             as events,
        cast(coalesce(features_monthly.core_features_used, 0) as bigint) as core_features_used,
        -- bookkeeping of the incremental runs
        cast(greatest(users_monthly.max_loaded_at, features_monthly.max_loaded_at) as timestamp)
                                                                         as max_loaded_at,
        cast({{ as_of }} as date)                                        as built_as_of,
        cast({{ cs_literal(monthly_adoption_config_hash()) }} as string) as adoption_config_hash
    from users_monthly
    left join features_monthly
        on  features_monthly.account_id = users_monthly.account_id
        and features_monthly.month = users_monthly.month

)

select * from final
