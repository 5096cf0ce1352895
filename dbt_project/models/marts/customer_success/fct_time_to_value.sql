-- Time to value per account, as of the reporting date D (var as_of), from data dated on or
-- before D. One row per CRM account with a subscription started on or before D.
--
-- subscription_start_date: the date of the account's earliest subscription started_at.
-- Stage k (var health_model.onboarding.stages) is reached on max(t_1 .. t_k), the t_j being the
-- milestone dates of int_account_milestones on or before D; it is not reached while any of
-- t_1 .. t_k is missing. First value = stage onboarding.first_value_stage.
-- ttv_days = first_value_date - subscription_start_date in whole days (UTC dates), 0 when first
-- value came before the subscription started. Accounts not there yet are censored at D:
-- observed_days (the Kaplan-Meier time of fct_ttv_cohorts) is ttv_days when reached, else
-- D - subscription_start_date.
-- current_stage: the highest stage reached by D (0 = not started); days_in_current_stage counts
-- from the day it was reached (stage 0: from the subscription start).
{%- set as_of = as_of_date() %}
{%- set first_value_stage = health_model()['onboarding']['first_value_stage'] %}

with crm_accounts as (

    select * from {{ ref('stg_crm__accounts') }}

),

customer_accounts as (

    select * from {{ ref('int_billing_customer_accounts') }}

),

subscriptions as (

    select * from {{ ref('stg_billing__subscriptions') }}

),

milestones as (

    select * from {{ ref('int_account_milestones') }}

),

stages as (

    select * from {{ onboarding_stages_relation() }}

),

starts as (

    select
        customer_accounts.account_id,
        min(cast(subscriptions.started_at as date)) as subscription_start_date
    from subscriptions
    inner join customer_accounts
        on customer_accounts.billing_customer_id = subscriptions.billing_customer_id
    inner join crm_accounts
        on crm_accounts.account_id = customer_accounts.account_id
    where cast(subscriptions.started_at as date) <= {{ as_of }}
    group by customer_accounts.account_id

),

account_stages as (

    select
        starts.account_id,
        stages.stage,
        stages.stage_name,
        milestones.milestone_on
    from starts
    cross join stages
    left join milestones
        on  milestones.account_id = starts.account_id
        and milestones.stage = stages.stage
        and milestones.milestone_on <= {{ as_of }}

),

reached as (

    -- stage k is reached when t_1 .. t_k are all known, on the latest of them
    select
        account_id,
        stage,
        stage_name,
        case
            when count(milestone_on) over up_to_stage = stage
                then max(milestone_on) over up_to_stage
        end as reached_on
    from account_stages
    window up_to_stage as (
        partition by account_id
        order by stage
        rows between unbounded preceding and current row
    )

),

per_account as (

    select
        account_id,
        max(reached_on) filter (where stage = {{ first_value_stage }}) as first_value_date,
        max(stage) filter (where reached_on is not null)              as current_stage,
        arg_max(stage_name, stage) filter (where reached_on is not null)
                                                                      as current_stage_name,
        max(reached_on)                                               as current_stage_reached_on
    from reached
    group by account_id

),

joined as (

    select
        starts.account_id,
        crm_accounts.segment,
        starts.subscription_start_date,
        per_account.first_value_date,
        per_account.first_value_date is not null                        as has_reached_first_value,
        case when per_account.first_value_date is not null
            then greatest(per_account.first_value_date - starts.subscription_start_date, 0)
        end                                                             as ttv_days,
        coalesce(per_account.current_stage, 0)                          as current_stage,
        coalesce(per_account.current_stage_name, 'not_started')         as current_stage_name,
        coalesce(per_account.current_stage_reached_on, starts.subscription_start_date)
                                                                        as current_stage_start_date
    from starts
    inner join crm_accounts
        on crm_accounts.account_id = starts.account_id
    left join per_account
        on per_account.account_id = starts.account_id

),

final as (

    select
        cast(account_id as string)                                     as account_id,
        cast(segment as string)                                        as segment,
        cast(subscription_start_date as date)                           as subscription_start_date,
        cast({{ month_start('subscription_start_date') }} as date)      as start_month,
        cast({{ first_value_stage }} as integer)                        as first_value_stage,
        cast(first_value_date as date)                                    as first_value_date,
        cast(has_reached_first_value as boolean)                        as has_reached_first_value,
        cast(ttv_days as integer)                                       as ttv_days,
        cast(case when has_reached_first_value then ttv_days
            else {{ as_of }} - subscription_start_date end as integer)  as observed_days,
        cast(current_stage as integer)                                  as current_stage,
        cast(current_stage_name as string)                             as current_stage_name,
        cast(current_stage_start_date as date)                               as current_stage_start_date,
        cast({{ as_of }} - current_stage_start_date as integer)              as days_in_current_stage,
        cast({{ as_of }} as date)                                       as as_of_date
    from joined

)

select * from final
