-- Adoption by start cohort: one row per cohort (cohort_month = the account's first month with
-- MRR > 0 in fct_mrr_monthly) and month since start (0 = the cohort month) through the reporting
-- month. CRM accounts only (unmapped billing customers have no product data).
--
-- logo_retention = retained accounts (MRR > 0 in the month) / cohort accounts;
-- revenue_retention = the cohort's MRR in the month / its MRR in the cohort month.
-- The adoption measures are over the retained accounts of the month (paying customers):
-- active_account_share = retained accounts with an event in the month / retained accounts;
-- mean_core_feature_breadth = distinct core features used in the month, averaged over retained
--   accounts (0 for an account without activity);
-- depth_active_days_per_user = user active days / active users (days a user was active, per
--   active user, pooled over the cohort);
-- license_utilisation = active users / purchased seats (seats of the item rows in force on the
--   month's measured_date), pooled over retained accounts with seats.
-- Ratios are DECIMAL(18,6), rounded half away from zero; null when the denominator is 0.
{%- set as_of = as_of_date() %}

with monthly as (

    select * from {{ ref('fct_mrr_monthly') }}
    where segment <> 'unmapped'

),

adoption as (

    select * from {{ ref('int_account_monthly_adoption') }}

),

items as (

    select * from {{ ref('int_subscription_items_in_force') }}

),

cohorts as (

    select
        account_id,
        min(month) filter (where mrr_usd > 0) as cohort_month
    from monthly
    group by account_id

),

starting as (

    select
        cohorts.account_id,
        cohorts.cohort_month,
        monthly.mrr_usd as starting_mrr_usd
    from cohorts
    inner join monthly
        on  monthly.account_id = cohorts.account_id
        and monthly.month = cohorts.cohort_month

),

seats as (

    select
        monthly.account_id,
        monthly.month,
        sum(items.quantity) as purchased_seats
    from monthly
    inner join items
        on  items.account_id = monthly.account_id
        and items.in_force_from <= monthly.measured_date
        and (items.in_force_until is null or monthly.measured_date < items.in_force_until)
    where monthly.mrr_usd > 0
    group by monthly.account_id, monthly.month

),

account_months as (

    select
        starting.cohort_month,
        monthly.month,
        datediff('month', starting.cohort_month, monthly.month)  as months_since_start,
        monthly.account_id,
        starting.starting_mrr_usd,
        monthly.mrr_usd,
        monthly.mrr_usd > 0                                      as is_retained,
        coalesce(adoption.active_users, 0)                       as active_users,
        coalesce(adoption.user_active_days, 0)                   as user_active_days,
        coalesce(adoption.core_features_used, 0)                 as core_features_used,
        coalesce(seats.purchased_seats, 0)                       as purchased_seats
    from monthly
    inner join starting
        on starting.account_id = monthly.account_id
    left join adoption
        on  adoption.account_id = monthly.account_id
        and adoption.month = monthly.month
    left join seats
        on  seats.account_id = monthly.account_id
        and seats.month = monthly.month

),

aggregated as (

    select
        cohort_month,
        month,
        months_since_start,
        count(*)                                                            as cohort_accounts,
        count(*) filter (where is_retained)                                 as retained_accounts,
        sum(starting_mrr_usd)                                               as starting_mrr_usd,
        sum(mrr_usd)                                                        as mrr_usd,
        count(*) filter (where is_retained and active_users > 0)            as active_accounts,
        coalesce(sum(core_features_used) filter (where is_retained), 0)     as core_features_used,
        coalesce(sum(active_users) filter (where is_retained), 0)           as active_users,
        coalesce(sum(user_active_days) filter (where is_retained), 0)       as user_active_days,
        coalesce(sum(purchased_seats) filter (where is_retained and purchased_seats > 0), 0)
                                                                            as purchased_seats,
        coalesce(sum(active_users) filter (where is_retained and purchased_seats > 0), 0)
                                                                            as seated_active_users
    from account_months
    group by cohort_month, month, months_since_start

),

final as (

    select
        cast(cohort_month as date)                                           as cohort_month,
        cast(month as date)                                                  as month,
        cast(months_since_start as integer)                                  as months_since_start,
        cast(cohort_accounts as bigint)                                      as cohort_accounts,
        cast(retained_accounts as bigint)                                    as retained_accounts,
        cast({{ decimal_ratio('retained_accounts', 'cohort_accounts') }} as decimal(18, 6))
                                                                             as logo_retention,
        cast(starting_mrr_usd as decimal(18, 4))                             as starting_mrr_usd,
        cast(mrr_usd as decimal(18, 4))                                      as mrr_usd,
        cast({{ decimal_ratio('mrr_usd', 'starting_mrr_usd') }} as decimal(18, 6))
                                                                             as revenue_retention,
        cast(active_accounts as bigint)                                      as active_accounts,
        cast({{ decimal_ratio('active_accounts', 'retained_accounts') }} as decimal(18, 6))
                                                                             as active_account_share,
        cast({{ decimal_ratio('core_features_used', 'retained_accounts') }} as decimal(18, 6))
                                                                             as mean_core_feature_breadth,
        cast(active_users as bigint)                                         as active_users,
        cast(user_active_days as bigint)                                     as user_active_days,
        cast({{ decimal_ratio('user_active_days', 'active_users') }} as decimal(18, 6))
                                                                             as depth_active_days_per_user,
        cast(purchased_seats as bigint)                                      as purchased_seats,
        cast({{ decimal_ratio('seated_active_users', 'purchased_seats') }} as decimal(18, 6))
                                                                             as license_utilisation,
        cast({{ as_of }} as date)                                            as as_of_date
    from aggregated

)

select * from final
