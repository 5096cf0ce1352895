-- One row per CRM account, as of the reporting date D (var as_of): billing links, subscription
-- dates, current MRR and ARR, next renewal date, lifecycle stage and engagement model.
-- Billing customers with no CRM account are not here (see int_unmapped_billing_customers).
--
-- Point in time: an account is here when it existed on D: created in the CRM on or before D, or
-- already billed (a subscription of its billing customers started on or before D; a CRM record
-- created after the billing start, e.g. by a CRM migration, must not hide a paying customer).
-- Billing links follow the same rule per billing customer: created on or before D, or with a
-- subscription started on or before D. Rows dated after D never change this model as of D.
--
-- current_mrr_usd is the contract MRR applied to day D (the reporting month's row of
-- int_account_mrr_monthly, which is measured on D); ARR = 12 x MRR.
-- next_renewal_date (health-model.md): the earliest date on or after D among
--   (a) anniversaries of started_at (k = 1, 2, ... steps of 12 x interval_count months; the start
--       itself is not a renewal) of subscriptions with a yearly item in force on D, and
--   (b) contract_end_date of closed_won opportunities with close_date on or before D.
-- lifecycle_stage, the first that applies: churned (had MRR > 0 on some day before D, none on D);
--   prospect (no subscription started on or before D); trial (started, MRR 0 on D, never had
--   MRR); renewal (next renewal within var renewal_window_days of D); then by days since the
--   earliest subscription start: onboarding, adoption, value_realisation, expansion (var
--   lifecycle_stage_days).
-- engagement_model by ARR on D (var engagement_model_thresholds): high_touch, scaled, tech_touch.
{%- set as_of = as_of_date() %}
{%- set engagement = var('engagement_model_thresholds') %}
{%- set stage_days = var('lifecycle_stage_days') %}

with all_crm_accounts as (

    select * from {{ ref('stg_crm__accounts') }}

),

all_customer_accounts as (

    select * from {{ ref('int_billing_customer_accounts') }}

),

billing_customers as (

    select * from {{ ref('stg_billing__customers') }}

),

subscriptions as (

    select * from {{ ref('stg_billing__subscriptions') }}

),

customers_billed_by_as_of as (

    select distinct billing_customer_id
    from subscriptions
    where cast(started_at as date) <= {{ as_of }}

),

customer_accounts as (

    -- The billing customers that existed on D.
    select all_customer_accounts.*
    from all_customer_accounts
    left join billing_customers
        on billing_customers.billing_customer_id = all_customer_accounts.billing_customer_id
    left join customers_billed_by_as_of
        on customers_billed_by_as_of.billing_customer_id = all_customer_accounts.billing_customer_id
    where cast(billing_customers.created_at as date) <= {{ as_of }}
       or customers_billed_by_as_of.billing_customer_id is not null

),

accounts_billed_by_as_of as (

    select distinct customer_accounts.account_id
    from customer_accounts
    inner join customers_billed_by_as_of
        on customers_billed_by_as_of.billing_customer_id = customer_accounts.billing_customer_id
    where customer_accounts.is_mapped_to_crm

),

crm_accounts as (

    -- The CRM accounts that existed on D.
    select *
    from all_crm_accounts
    where cast(created_at as date) <= {{ as_of }}
       or account_id in (select account_id from accounts_billed_by_as_of)

),

items as (

    select * from {{ ref('int_subscription_items_in_force') }}

),

account_mrr as (

    select * from {{ ref('int_account_mrr_monthly') }}

),

opportunities as (

    select * from {{ ref('stg_crm__opportunities') }}

),

billing_links as (

    select
        account_id,
        {{ sorted_distinct_join('billing_customer_id', "', '") }}
            as billing_customer_ids,
        {{ sorted_distinct_join('currency', "', '") }} as currency
    from customer_accounts
    where is_mapped_to_crm
    group by account_id

),

subscription_starts as (

    select
        customer_accounts.account_id,
        min(cast(subscriptions.started_at as date)) as first_subscription_start_date,
        max(cast(subscriptions.started_at as date)) as latest_subscription_start_date
    from subscriptions
    inner join customer_accounts
        on customer_accounts.billing_customer_id = subscriptions.billing_customer_id
    where cast(subscriptions.started_at as date) <= {{ as_of }}
    group by customer_accounts.account_id

),

current_mrr as (

    select
        account_id,
        mrr_usd
    from account_mrr
    where month = {{ month_start(as_of) }}

),

earlier_mrr as (

    -- MRR > 0 on some day before D: a positive item version in force on a day before D.
    select distinct account_id
    from items
    where amount_per_interval > 0
      and in_force_from < {{ as_of }}

),

yearly_items_in_force as (

    select
        account_id,
        subscription_started_on,
        12 * interval_count                                                  as step_months,
        {{ integer_divide(month_diff('subscription_started_on', as_of), '12 * interval_count') }}
                                                                             as whole_steps
    from items
    where billing_interval = 'year'
      and in_force_from <= {{ as_of }}
      and (in_force_until is null or {{ as_of }} < in_force_until)

),

renewal_candidates as (

    -- The anniversary after `whole_steps` steps is on or before D's month; if it is before D
    -- the next one is the first on or after D.
    select
        account_id,
        case
            when {{ add_months('subscription_started_on', 'greatest(whole_steps, 1) * step_months') }}
                >= {{ as_of }}
                then {{ add_months('subscription_started_on', 'greatest(whole_steps, 1) * step_months') }}
            else {{ add_months('subscription_started_on', '(greatest(whole_steps, 1) + 1) * step_months') }}
        end as renewal_date
    from yearly_items_in_force

    union all

    select
        account_id,
        contract_end_date as renewal_date
    from opportunities
    where stage = 'closed_won'
      and close_date <= {{ as_of }}
      and contract_end_date >= {{ as_of }}

),

next_renewals as (

    select
        account_id,
        min(renewal_date) as next_renewal_date
    from renewal_candidates
    group by account_id

),

joined as (

    select
        crm_accounts.account_id,
        crm_accounts.account_name,
        crm_accounts.segment,
        crm_accounts.industry,
        crm_accounts.region,
        crm_accounts.owner,
        billing_links.billing_customer_ids,
        billing_links.currency,
        subscription_starts.first_subscription_start_date,
        subscription_starts.latest_subscription_start_date,
        coalesce(current_mrr.mrr_usd, 0)                    as current_mrr_usd,
        next_renewals.next_renewal_date,
        earlier_mrr.account_id is not null                  as had_mrr_before_as_of,
        {{ day_diff('subscription_starts.first_subscription_start_date', as_of) }}
                                                            as days_since_first_subscription
    from crm_accounts
    left join billing_links
        on billing_links.account_id = crm_accounts.account_id
    left join subscription_starts
        on subscription_starts.account_id = crm_accounts.account_id
    left join current_mrr
        on current_mrr.account_id = crm_accounts.account_id
    left join earlier_mrr
        on earlier_mrr.account_id = crm_accounts.account_id
    left join next_renewals
        on next_renewals.account_id = crm_accounts.account_id

),

final as (

    select
        cast(account_id as string)                                  as account_id,
        cast(account_name as string)                                as account_name,
        cast(segment as string)                                     as segment,
        cast(industry as string)                                    as industry,
        cast(region as string)                                      as region,
        cast(owner as string)                                       as owner,
        cast(billing_customer_ids as string)                        as billing_customer_ids,
        cast(currency as string)                                    as currency,
        cast(first_subscription_start_date as date)                  as first_subscription_start_date,
        cast(latest_subscription_start_date as date)                 as latest_subscription_start_date,
        cast(current_mrr_usd as decimal(18, 4))                      as current_mrr_usd,
        cast(cast(current_mrr_usd as decimal(38, 4)) * 12 as decimal(18, 4))
                                                                     as current_arr_usd,
        cast(next_renewal_date as date)                              as next_renewal_date,
        cast(case
            when current_mrr_usd = 0 and had_mrr_before_as_of then 'churned'
            when first_subscription_start_date is null then 'prospect'
            when current_mrr_usd = 0 then 'trial'
            when next_renewal_date <= {{ add_days(as_of, var('renewal_window_days')) }}
                then 'renewal'
            when days_since_first_subscription < {{ stage_days['onboarding'] }} then 'onboarding'
            when days_since_first_subscription < {{ stage_days['adoption'] }} then 'adoption'
            when days_since_first_subscription < {{ stage_days['value_realisation'] }}
                then 'value_realisation'
            else 'expansion'
        end as string)                                              as lifecycle_stage,
        cast(case
            when cast(current_mrr_usd as decimal(38, 4)) * 12
                >= cast({{ engagement['high_touch'] }} as decimal(38, 4)) then 'high_touch'
            when cast(current_mrr_usd as decimal(38, 4)) * 12
                >= cast({{ engagement['scaled'] }} as decimal(38, 4)) then 'scaled'
            else 'tech_touch'
        end as string)                                              as engagement_model,
        cast({{ as_of }} as date)                                    as as_of_date
    from joined

)

select * from final
