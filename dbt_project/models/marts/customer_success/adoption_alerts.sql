-- Adoption alerts as of the reporting date D (var as_of), one row per alert, for the accounts
-- scored at D (fct_account_health rows at D: paying customers). lists.adoption_alerts holds every
-- window and share:
--   user_not_activated (subject: user_id): a user provisioned min_days .. max_days (14 .. 90) days
--     before D, not deprovisioned on or before D, with no event from its provisioning day to D;
--   no_activity: no event in the no_activity_days (30) days to D;
--   activity_declining: distinct active users in the window_days (7) days to D
--     < below_share (0.8) x the mean of the previous_windows (4) windows before;
--   feature_unused (subject: feature): a feature included in the tier of a plan in force on D
--     (tier_features) and not used in the feature_unused_window_days (30) days to D;
--   health_drop: health score at D <= at_most_share (0.8) x the score health_drop.days (7) days
--     earlier, and lower than it (an account at 0 both times is not a drop).
{%- set as_of = as_of_date() %}
{%- set hm = health_model() %}
{%- set al = hm['lists']['adoption_alerts'] %}
{%- set na = al['user_not_activated'] %}
{%- set decl = al['activity_declining'] %}
{%- set unused_w = cs_int(al['feature_unused_window_days']) %}
{%- set drop = al['health_drop'] %}

with health as (

    select * from {{ ref('fct_account_health') }}
    where as_of_date = {{ as_of }}

),

scores as (

    select * from {{ ref('int_account_health_scores') }}

),

history as (

    select * from {{ ref('int_account_signal_history') }}

),

users as (

    select * from {{ ref('stg_product__users') }}

),

user_days as (

    select * from {{ ref('int_user_daily_activity') }}

),

feature_days as (

    select * from {{ ref('int_account_daily_feature_usage') }}

),

items as (

    select * from {{ ref('int_subscription_items_in_force') }}

),

plans as (

    select * from {{ ref('stg_billing__plans') }}

),

tier_features as (

    select * from {{ tier_features_relation() }}

),

-- user_not_activated ---------------------------------------------------------------------------

new_users as (

    select
        users.account_id,
        users.user_id,
        cast(users.provisioned_at as date) as provisioned_on
    from users
    inner join health
        on health.account_id = users.account_id
    where cast(users.provisioned_at as date)
            between {{ as_of }} - {{ na['max_days'] }} and {{ as_of }} - {{ na['min_days'] }}
      and (users.deprovisioned_at is null or cast(users.deprovisioned_at as date) > {{ as_of }})

),

not_activated as (

    select
        new_users.account_id,
        'user_not_activated'                                         as alert_type,
        new_users.user_id                                            as subject,
        'provisioned on ' || strftime(new_users.provisioned_on, '%Y-%m-%d') || ' ('
        || ({{ as_of }} - new_users.provisioned_on) || ' days ago), no activity since'
                                                                     as detail
    from new_users
    where not exists (
        select 1
        from user_days
        where user_days.user_id = new_users.user_id
          and user_days.account_id = new_users.account_id
          and user_days.activity_date between new_users.provisioned_on and {{ as_of }}
    )

),

-- no_activity and activity_declining: the signal history at D and before --------------------

lookups as (

    select account_id, 0 as days_before, {{ as_of }} as lookup_on from health
    union all
    select account_id, {{ al['no_activity_days'] }}, {{ as_of }} - {{ al['no_activity_days'] }} from health
    {%- for k in range(1, cs_int(decl['previous_windows']) + 1) %}
    union all
    select account_id, {{ -k * cs_int(decl['window_days']) }}, {{ as_of }} - {{ k * cs_int(decl['window_days']) }} from health
    {%- endfor %}

),

looked_up as (

    select
        lookups.account_id,
        lookups.days_before,
        coalesce(history.cumulative_events, 0)                           as cumulative_events,
        coalesce(history.active_users_{{ decl['window_days'] }}d, 0)     as active_users
    from lookups
    asof left join history
        on  history.account_id = lookups.account_id
        and lookups.lookup_on >= history.changed_on

),

activity as (

    -- days_before is negative for the activity_declining windows, so they never collide with the
    -- no_activity lookup
    select
        account_id,
        max(cumulative_events) filter (where days_before = 0)
            - max(cumulative_events) filter (where days_before = {{ al['no_activity_days'] }})
                                                                         as recent_events,
        max(active_users) filter (where days_before = 0)                 as active_users,
        sum(active_users) filter (where days_before < 0)                 as previous_active_users
    from looked_up
    group by account_id

),

no_activity as (

    select
        account_id,
        'no_activity'                                                as alert_type,
        cast(null as string)                                            as subject,
        'no event in the {{ al['no_activity_days'] }} days to '
        || strftime({{ as_of }}, '%Y-%m-%d')                             as detail
    from activity
    where recent_events = 0

),

declining as (

    select
        account_id,
        'activity_declining'                                             as alert_type,
        cast(null as string)                                            as subject,
        active_users || ' active users in the {{ decl['window_days'] }} days to '
        || strftime({{ as_of }}, '%Y-%m-%d') || ' vs '
        || cast(round(cast(previous_active_users as decimal(18, 4)) / {{ decl['previous_windows'] }}, 1)
            as decimal(18, 1))
        || ' on average in the {{ decl['previous_windows'] }} {{ decl['window_days'] }}-day windows before'
                                                                         as detail
    from activity
    where active_users * {{ decl['previous_windows'] }}
        < {{ cs_threshold(decl['below_share']) }} * previous_active_users

),

-- feature_unused --------------------------------------------------------------------------------

account_tiers as (

    select distinct
        items.account_id,
        plans.tier
    from items
    inner join health
        on health.account_id = items.account_id
    inner join plans
        on plans.plan_id = items.plan_id
    where items.in_force_from <= {{ as_of }}
      and (items.in_force_until is null or {{ as_of }} < items.in_force_until)

),

included_features as (

    select
        account_tiers.account_id,
        tier_features.feature,
        string_agg(distinct account_tiers.tier, ', ' order by account_tiers.tier) as tiers
    from account_tiers
    inner join tier_features
        on tier_features.tier = account_tiers.tier
    group by account_tiers.account_id, tier_features.feature

),

used_features as (

    select distinct
        account_id,
        feature
    from feature_days
    where activity_date between {{ as_of }} - {{ unused_w - 1 }} and {{ as_of }}

),

unused as (

    select
        included_features.account_id,
        'feature_unused'                                                 as alert_type,
        included_features.feature                                        as subject,
        included_features.feature || ' is included in the ' || included_features.tiers
        || ' plan and was not used in the {{ unused_w }} days to '
        || strftime({{ as_of }}, '%Y-%m-%d')                             as detail
    from included_features
    left join used_features
        on  used_features.account_id = included_features.account_id
        and used_features.feature = included_features.feature
    where used_features.feature is null

),

-- health_drop -----------------------------------------------------------------------------------

drops as (

    select
        health.account_id,
        'health_drop'                                                    as alert_type,
        cast(null as string)                                            as subject,
        'health ' || health.health_score || ', was ' || earlier.health_score || ' on '
        || strftime(earlier.as_of_date, '%Y-%m-%d')                      as detail
    from health
    inner join scores as earlier
        on  earlier.account_id = health.account_id
        and earlier.as_of_date = {{ as_of }} - {{ drop['days'] }}
    where health.health_score <= {{ cs_threshold(drop['at_most_share']) }} * earlier.health_score
      and health.health_score < earlier.health_score

),

alerts as (

    select * from not_activated
    union all
    select * from no_activity
    union all
    select * from declining
    union all
    select * from unused
    union all
    select * from drops

),

final as (

    select
        cast(account_id as string)  as account_id,
        cast(alert_type as string)  as alert_type,
        cast(subject as string)     as subject,
        cast(detail as string)      as detail,
        {{ health_model_version_columns() }},
        cast({{ as_of }} as date)    as as_of_date
    from alerts

)

select * from final
order by account_id, alert_type, subject
