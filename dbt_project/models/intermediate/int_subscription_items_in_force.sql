-- Subscription item versions (the price history) with the days on which each is in force, and
-- its price per billing interval after discount.
--
-- Day boundaries: the contract's "in force on day D" is applied to UTC dates. A row is in force
-- on every date D with
--     in_force_from <= D and (in_force_until is null or D < in_force_until)
-- where in_force_from  = the latest of valid_from's date, the subscription's started_at date and
--                        its trial_end date (the trial is over from trial_end's date on), and
--       in_force_until = the earliest of valid_to's date and the subscription's ended_at date.
-- A change at any time of day D is therefore effective for the whole of D: the version opened on
-- D counts on D, the version it closed does not, and exactly one version of an item is in force
-- on any day. Versions in force on no day at all are left out.
with items as (

    select * from {{ ref('stg_billing__subscription_items') }}

),

subscriptions as (

    select * from {{ ref('stg_billing__subscriptions') }}

),

customer_accounts as (

    select * from {{ ref('int_billing_customer_accounts') }}

),

joined as (

    select
        items.item_id,
        items.valid_from,
        items.valid_to,
        items.subscription_id,
        subscriptions.billing_customer_id,
        customer_accounts.account_id,
        items.plan_id,
        items.quantity,
        items.unit_amount,
        items.currency,
        items.billing_interval,
        items.interval_count,
        coalesce(items.discount_percent, 0)    as discount_percent,
        cast(subscriptions.started_at as date) as subscription_started_on,
        greatest(
            cast(items.valid_from as date),
            cast(subscriptions.started_at as date),
            cast(subscriptions.trial_end as date)
        )                                      as in_force_from,
        least(
            cast(items.valid_to as date),
            cast(subscriptions.ended_at as date)
        )                                      as in_force_until
    from items
    inner join subscriptions
        on subscriptions.subscription_id = items.subscription_id
    inner join customer_accounts
        on customer_accounts.billing_customer_id = subscriptions.billing_customer_id

),

final as (

    select
        item_id,
        valid_from,
        valid_to,
        subscription_id,
        billing_customer_id,
        account_id,
        plan_id,
        quantity,
        unit_amount,
        currency,
        billing_interval,
        interval_count,
        discount_percent,
        case billing_interval
            when 'month' then interval_count
            when 'year' then 12 * interval_count
        end                                                   as months_in_interval,
        -- quantity * unit_amount * (1 - discount_percent / 100), exact: 10 decimals suffice.
        cast(
            quantity * unit_amount * (100 - discount_percent) * 0.01
            as decimal(38, 10)
        )                                                     as amount_per_interval,
        subscription_started_on,
        in_force_from,
        in_force_until
    from joined
    where in_force_until is null or in_force_from < in_force_until

)

select * from final
