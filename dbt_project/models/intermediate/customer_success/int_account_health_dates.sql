-- The dates the health score is computed for (the as_of_date values of
-- int_account_health_spine, measures and scores), and whether each is reported: every Monday from
-- the first Monday on or after the first day any CRM account had MRR, through as_of, plus as_of
-- itself (is_reported = true: the rows of fct_account_health); and, as helper dates
-- (is_reported = false), each reported date minus health_score.change_days (for health_change)
-- and as_of minus lists.adoption_alerts.health_drop.days (for the health_drop alert).
-- A table of its own so the incremental health models can tell the dates they lack and the
-- dates no longer wanted or whose is_reported changed (macros/health_incremental.sql).
{%- set as_of = as_of_date() %}
{%- set hm = health_model() %}
{%- set change_days = hm['health_score']['change_days'] %}
{%- set health_drop_days = hm['lists']['adoption_alerts']['health_drop']['days'] %}

with items as (

    select * from {{ ref('int_subscription_items_in_force') }}

),

crm_accounts as (

    select * from {{ ref('stg_crm__accounts') }}

),

account_items as (

    select items.*
    from items
    inner join crm_accounts
        on crm_accounts.account_id = items.account_id

),

bounds as (

    select
        min(in_force_from) as first_mrr_on
    from account_items
    where amount_per_interval > 0
      and in_force_from <= {{ as_of }}

),

reported_dates as (

    select
        cast(unnest(generate_series(
            first_mrr_on + cast((8 - isodow(first_mrr_on)) % 7 as integer),
            {{ as_of }},
            interval 7 day
        )) as date) as as_of_date
    from bounds
    where first_mrr_on is not null

    union

    select {{ as_of }} as as_of_date
    from bounds
    where first_mrr_on is not null

),

all_dates as (

    select as_of_date, true as is_reported from reported_dates

    union all

    select as_of_date - {{ change_days }}, false from reported_dates

    union all

    select {{ as_of }} - {{ health_drop_days }}, false
    from bounds
    where first_mrr_on is not null

),

dates as (

    select
        as_of_date,
        bool_or(is_reported) as is_reported
    from all_dates
    group by as_of_date

),

final as (

    select
        cast(as_of_date as date)     as as_of_date,
        cast(is_reported as boolean) as is_reported
    from dates

)

select * from final
