-- Every billing customer with the account its revenue is reported under. A customer whose
-- account_id is missing or unknown to the CRM (or a customer id that only subscriptions mention)
-- keeps its revenue under the surrogate account id `unmapped:<billing_customer_id>`: it is
-- reported (int_unmapped_billing_customers, a warn-severity test), never dropped.
with customers as (

    select * from {{ ref('stg_billing__customers') }}

),

subscriptions as (

    select * from {{ ref('stg_billing__subscriptions') }}

),

crm_accounts as (

    select * from {{ ref('stg_crm__accounts') }}

),

billing_customer_ids as (

    select billing_customer_id from customers
    union
    select billing_customer_id from subscriptions

),

joined as (

    select
        ids.billing_customer_id,
        customers.account_id                     as crm_account_id,
        customers.currency,
        customers.billing_customer_id is not null as is_in_customer_extract,
        crm_accounts.account_id is not null       as is_mapped_to_crm
    from billing_customer_ids as ids
    left join customers
        on customers.billing_customer_id = ids.billing_customer_id
    left join crm_accounts
        on crm_accounts.account_id = customers.account_id

),

final as (

    select
        billing_customer_id,
        case
            when is_mapped_to_crm then crm_account_id
            else 'unmapped:' || billing_customer_id
        end as account_id,
        crm_account_id,
        currency,
        is_mapped_to_crm,
        case
            when is_mapped_to_crm then null
            when not is_in_customer_extract then 'customer_not_in_billing_extract'
            when crm_account_id is null then 'no_crm_account_id'
            else 'crm_account_not_found'
        end as unmapped_reason
    from joined

)

select * from final
