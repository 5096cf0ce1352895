-- Billing customers whose revenue cannot be attributed to a CRM account. Their MRR is still in
-- every revenue mart, under account_id `unmapped:<billing_customer_id>` and segment `unmapped`;
-- this list is what the warn-severity test assert_billing_customers_mapped_to_crm reports.
with customer_accounts as (

    select * from {{ ref('int_billing_customer_accounts') }}

),

subscriptions as (

    select * from {{ ref('stg_billing__subscriptions') }}

),

subscription_counts as (

    select
        billing_customer_id,
        count(*)        as subscription_count,
        min(started_at) as first_subscription_started_at
    from subscriptions
    group by billing_customer_id

),

final as (

    select
        customer_accounts.billing_customer_id,
        customer_accounts.account_id,
        customer_accounts.crm_account_id,
        customer_accounts.currency,
        customer_accounts.unmapped_reason,
        coalesce(subscription_counts.subscription_count, 0) as subscription_count,
        subscription_counts.first_subscription_started_at
    from customer_accounts
    left join subscription_counts
        on subscription_counts.billing_customer_id = customer_accounts.billing_customer_id
    where not customer_accounts.is_mapped_to_crm

)

select * from final
