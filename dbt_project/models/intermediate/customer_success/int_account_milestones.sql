-- The UTC date on which each onboarding milestone's own trigger happened, per account
-- (health-model.md "Onboarding stages"): for a stage marked by an event, the day of its
-- `occurrence`-th event by any of the account's users (1 = first; the default stage 5 is the
-- third `project_created`); for a stage marked by users, the day the account's
-- `user_provisioned`-th user was provisioned (users ordered by provisioned_at, then user_id; the
-- default stage 3 is the second user). Stages come from var health_model.onboarding.stages.
--
-- These are the t_k of health-model.md, not yet the stage reached dates: stage k is reached on
-- max(t_1 .. t_k), which fct_time_to_value computes as of its reporting date. A milestone's date
-- never depends on data dated after it, so this model does not depend on as_of: a model as of D
-- keeps the rows with milestone_on <= D. Accounts without a milestone have no row for it.
{%- set stages = health_model()['onboarding']['stages'] %}
{%- set event_stages = stages | selectattr('event') | list %}
{%- set user_stages = stages | rejectattr('event') | list %}

with user_events as (

    select * from {{ ref('int_user_daily_events') }}

),

users as (

    select * from {{ ref('stg_product__users') }}

),

milestone_event_days as (

    select
        account_id,
        event_name,
        activity_date,
        sum(events) as events
    from user_events
    where event_name in {{ sql_in_list(event_stages | map(attribute='event') | list + ['']) }}
    group by account_id, event_name, activity_date

),

running_counts as (

    select
        *,
        sum(events) over (
            partition by account_id, event_name
            order by activity_date
            rows between unbounded preceding and current row
        ) as events_so_far
    from milestone_event_days

),

numbered_users as (

    select
        account_id,
        cast(provisioned_at as date) as provisioned_on,
        row_number() over (
            partition by account_id
            order by provisioned_at, user_id
        )                            as user_number
    from users
    where provisioned_at is not null

),

milestones as (

    {%- for s in event_stages %}

    select
        account_id,
        {{ s['stage'] }}           as stage,
        {{ cs_literal(s['name']) }} as stage_name,
        min(activity_date)         as milestone_on
    from running_counts
    where event_name = {{ cs_literal(s['event']) }}
      and events_so_far >= {{ s['occurrence'] }}
    group by account_id
    {{ 'union all' if not loop.last or user_stages | length > 0 }}
    {%- endfor %}

    {%- for s in user_stages %}

    select
        account_id,
        {{ s['stage'] }}           as stage,
        {{ cs_literal(s['name']) }} as stage_name,
        provisioned_on             as milestone_on
    from numbered_users
    where user_number = {{ s['user_provisioned'] }}
    {{ 'union all' if not loop.last }}
    {%- endfor %}

),

final as (

    select
        cast(account_id as string)  as account_id,
        cast(stage as integer)       as stage,
        cast(stage_name as string)  as stage_name,
        cast(milestone_on as date)   as milestone_on
    from milestones

)

select * from final
