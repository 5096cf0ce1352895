-- The (account, date) pairs the health score is computed for, with the account's MRR, purchased
-- seats and renewal date on that day.
--
-- Dates: int_account_health_dates (the Mondays through as_of and as_of itself, is_reported, and
-- the helper dates). An account is scored on a date when its MRR on that day is > 0: the contract's MRR
-- applied to the day (item versions in force on the day per int_subscription_items_in_force,
-- converted with the fx_rates row of the day's month, summed and rounded once to 4 decimals, as
-- int_account_mrr_monthly does for month ends). Only CRM accounts are scored (billing customers
-- without a CRM account have no product, support or CRM data to score).
--
-- purchased_seats: the sum of quantity of the item rows in force on the day.
-- renewal_date (health-model.md): the earliest date on or after the day among (a) anniversaries of
-- started_at (k >= 1 steps of 12 x interval_count months; the start itself is not a renewal) of
-- subscriptions with a yearly item in force on the day, and (b) contract_end_date of closed_won
-- opportunities with close_date on or before the day. The same rule as dim_accounts, per day.
--
-- A non-USD item on a day whose month has no fx_rates row stops the build (as the monthly MRR
-- does): int_subscription_item_mrr_monthly reports the month ends first (depends_on below), this
-- model the days it does not measure.
-- depends_on: {{ ref('int_subscription_item_mrr_monthly') }}
--
-- Incremental (macros/health_incremental.sql): the pre-hook deletes the pairs
-- int_account_health_invalidation names and the dates no longer wanted (or whose is_reported
-- changed); the run then computes the dates the table has no row for (a new Monday, a new as_of),
-- for every account, and the invalidated pairs. A day's values depend only on the inputs in force
-- on that day, so the table equals a full build.
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='append_new_columns',
        pre_hook="{{ health_incremental_delete(ref('int_account_health_dates'), ref('int_account_health_invalidation')) }}",
    )
}}

with items as (

    select * from {{ ref('int_subscription_items_in_force') }}

),

crm_accounts as (

    select * from {{ ref('stg_crm__accounts') }}

),

fx_rates as (

    select * from {{ ref('stg_billing__fx_rates') }}

),

opportunities as (

    select * from {{ ref('stg_crm__opportunities') }}

),

account_items as (

    select items.*
    from items
    inner join crm_accounts
        on crm_accounts.account_id = items.account_id

),

dates as (

    select * from {{ ref('int_account_health_dates') }}

),

invalidation as (

    select * from {{ ref('int_account_health_invalidation') }}

),
{%- if is_incremental() %}

-- dates without any row yet (after the pre-hook's delete): every account is computed on them
new_dates as (

    select as_of_date from dates
    where as_of_date not in (select as_of_date from {{ this }})

),
{%- endif %}

items_on_dates as (

    select
        dates.as_of_date,
        account_items.*
    from dates
    inner join account_items
        on  account_items.in_force_from <= dates.as_of_date
        and (account_items.in_force_until is null or dates.as_of_date < account_items.in_force_until)
    {%- if is_incremental() %}
    where dates.as_of_date in (select as_of_date from new_dates)
       or {{ health_invalidated_pair('invalidation', 'account_items.account_id', 'dates.as_of_date') }}
    {%- endif %}

),

with_rates as (

    select
        items_on_dates.*,
        case
            when items_on_dates.currency = 'USD' then cast(1 as decimal(18, 8))
            else fx_rates.rate_to_usd
        end as fx_rate_to_usd
    from items_on_dates
    left join fx_rates
        on  fx_rates.currency = items_on_dates.currency
        and fx_rates.month = {{ month_start('items_on_dates.as_of_date') }}

),

missing_rates as (

    select
        string_agg(
            distinct 'currency ' || currency || ' in month ' || strftime(as_of_date, '%Y-%m'),
            '; '
            order by 'currency ' || currency || ' in month ' || strftime(as_of_date, '%Y-%m')
        ) as missing
    from with_rates
    where fx_rate_to_usd is null

),

item_mrr as (

    select
        with_rates.account_id,
        with_rates.as_of_date,
        with_rates.quantity,
        {{ from_scaled_int(
            div_round_half_up(
                to_scaled_int('with_rates.amount_per_interval', 10) ~ ' * '
                    ~ to_scaled_int(
                        "case when with_rates.fx_rate_to_usd is null then error("
                        ~ "'Missing FX rate: fx_rates has no row for ' || missing_rates.missing"
                        ~ " || ', needed to convert MRR to USD. Load the rates and rebuild.')"
                        ~ " else with_rates.fx_rate_to_usd end",
                        8
                    ),
                'cast(with_rates.months_in_interval as hugeint) * 1000000'
            ),
            12
        ) }} as mrr_usd
    from with_rates
    cross join missing_rates

),

account_days as (

    select
        account_id,
        as_of_date,
        cast(sum(mrr_usd) as decimal(18, 4)) as mrr_usd,
        sum(quantity)                        as purchased_seats
    from item_mrr
    group by account_id, as_of_date

),

scored as (

    select
        account_days.*,
        dates.is_reported
    from account_days
    inner join dates
        on dates.as_of_date = account_days.as_of_date
    where account_days.mrr_usd > 0

),

anniversaries as (

    -- The anniversary after `whole_steps` steps is in or before the day's month; if it is before
    -- the day, the next one is the first on or after it.
    select
        account_id,
        as_of_date,
        case
            when {{ add_months('subscription_started_on', 'greatest(whole_steps, 1) * step_months') }}
                >= as_of_date
                then {{ add_months('subscription_started_on', 'greatest(whole_steps, 1) * step_months') }}
            else {{ add_months('subscription_started_on', '(greatest(whole_steps, 1) + 1) * step_months') }}
        end as renewal_date
    from (
        select
            account_id,
            as_of_date,
            subscription_started_on,
            12 * interval_count                                                    as step_months,
            datediff('month', subscription_started_on, as_of_date) // (12 * interval_count)
                                                                                   as whole_steps
        from items_on_dates
        where billing_interval = 'year'
    )

),

contract_ends as (

    select
        scored.account_id,
        scored.as_of_date,
        opportunities.contract_end_date as renewal_date
    from scored
    inner join opportunities
        on  opportunities.account_id = scored.account_id
        and opportunities.stage = 'closed_won'
        and opportunities.close_date <= scored.as_of_date
        and opportunities.contract_end_date >= scored.as_of_date

),

renewals as (

    select
        account_id,
        as_of_date,
        min(renewal_date) as renewal_date
    from (
        select * from anniversaries
        union all
        select * from contract_ends
    )
    group by account_id, as_of_date

),

final as (

    select
        cast(scored.account_id as string)                                       as account_id,
        cast(scored.as_of_date as date)                                          as as_of_date,
        cast(scored.is_reported as boolean)                                      as is_reported,
        cast(scored.mrr_usd as decimal(18, 4))                                   as mrr_usd,
        cast(cast(scored.mrr_usd as decimal(38, 4)) * 12 as decimal(18, 4))      as arr_usd,
        cast(scored.purchased_seats as bigint)                                   as purchased_seats,
        cast(renewals.renewal_date as date)                                      as renewal_date,
        {{ health_bookkeeping_columns(health_inputs_loaded_at('invalidation')) }}
    from scored
    left join renewals
        on  renewals.account_id = scored.account_id
        and renewals.as_of_date = scored.as_of_date

)

select * from final
