-- What happened after each scored date: for every account and reported date of the health
-- history (int_account_health_spine, is_reported), the day its MRR next went to 0, and whether
-- that was within the churn horizon (var churn_horizon_days, the setting CSW_CHURN_HORIZON_DAYS,
-- 90 by default). The outcome the backtest measures every score against and the learned churn
-- model is fitted to.
--
-- MRR is > 0 on a day exactly when an item with a positive price is in force on it
-- (int_subscription_items_in_force), so the account's paying stretches are those items' in-force
-- ranges merged (a range starting on the day another ends continues it: the end is exclusive).
-- A scored date lies in one stretch (its MRR is > 0); churned_on is that stretch's end, the first
-- day with MRR 0, when it is on or before as_of (an end known only as a future date has not
-- happened as of as_of). An account that churns and comes back later still churned.
-- outcome_complete: the whole horizon after the date is on or before as_of, so the outcome is
-- known.
-- activity_history_complete: the date is at least a week into the warehouse's product event
-- history (as_of_date >= the first day with any event of any account, as of as_of, + 6).
-- Billing history is often older than the event log: before it starts every account looks
-- inactive because nothing was logged, not because nobody used the product. A week, not the
-- baseline's 30 days: an event log of two months (common for a young product or an export)
-- with a 30-day horizon would otherwise leave no date to evaluate; the first weeks' 30-day
-- counts are partial for every account alike, so they still rank. No event at all: false.
-- Only rows with outcome_complete AND activity_history_complete are evaluated (the backtest,
-- int_backtest_scores) and trained on (the learned churn model, metrics/churn_model.py).
{%- set as_of = as_of_date() %}
{%- set horizon = var('churn_horizon_days') | int %}

{%- set event_history_days = 7 %}

with spine as (

    select * from {{ ref('int_account_health_spine') }}
    where is_reported

),

paid_items as (

    select
        account_id,
        in_force_from,
        coalesce(in_force_until, date '9999-12-31') as in_force_until
    from {{ ref('int_subscription_items_in_force') }}
    where amount_per_interval > 0
      and in_force_from <= {{ as_of }}

),

event_history as (

    select min(activity_date) as first_event_on
    from {{ ref('int_user_daily_events') }}
    where activity_date <= {{ as_of }}

),

with_reach as (

    select
        *,
        max(in_force_until) over (
            partition by account_id
            order by in_force_from, in_force_until
            rows between unbounded preceding and 1 preceding
        ) as covered_until_before
    from paid_items

),

numbered as (

    select
        *,
        sum(
            case
                when covered_until_before is null or in_force_from > covered_until_before then 1
                else 0
            end
        ) over (
            partition by account_id
            order by in_force_from, in_force_until
            rows between unbounded preceding and current row
        ) as stretch_number
    from with_reach

),

stretches as (

    select
        account_id,
        stretch_number,
        min(in_force_from)  as paying_from,
        max(in_force_until) as paying_until
    from numbered
    group by account_id, stretch_number

),

final as (

    select
        cast(spine.account_id as string)                                    as account_id,
        cast(spine.as_of_date as date)                                       as as_of_date,
        cast({{ horizon }} as integer)                                       as horizon_days,
        cast(
            case when stretches.paying_until <= {{ as_of }} then stretches.paying_until end
            as date
        )                                                                    as churned_on,
        cast(
            coalesce(
                stretches.paying_until <= {{ as_of }}
                and stretches.paying_until <= spine.as_of_date + {{ horizon }},
                false
            )
            as boolean
        )                                                                    as churned_within_horizon,
        cast(spine.as_of_date + {{ horizon }} <= {{ as_of }} as boolean)     as outcome_complete,
        cast(
            coalesce(
                spine.as_of_date >= event_history.first_event_on + {{ event_history_days - 1 }},
                false
            )
            as boolean
        )                                                                    as activity_history_complete
    from spine
    cross join event_history
    left join stretches
        on  stretches.account_id = spine.account_id
        and stretches.paying_from <= spine.as_of_date
        and spine.as_of_date < stretches.paying_until

)

select * from final
