-- Billing invoices: latest version per invoice_id. Rename and cast only.
with source as (

    select * from {{ source('billing', 'invoices') }}

),

latest as (

    select *
    from source
    qualify row_number() over (
        partition by invoice_id
        order by updated_at desc, _loaded_at desc, _source_file desc, _source_row desc
    ) = 1

),

renamed as (

    select
        cast(invoice_id as string)          as invoice_id,
        cast(billing_customer_id as string) as billing_customer_id,
        cast(subscription_id as string)     as subscription_id,
        cast(issued_at as timestamp)         as issued_at,
        cast(due_at as timestamp)            as due_at,
        cast(period_start as date)           as period_start,
        cast(period_end as date)             as period_end,
        cast(amount_due as decimal(18,4))    as amount_due,
        cast(amount_paid as decimal(18,4))   as amount_paid,
        cast(currency as string)            as currency,
        cast(status as string)              as status,
        cast(attempt_count as bigint)        as attempt_count,
        cast(paid_at as timestamp)           as paid_at,
        cast(updated_at as timestamp)        as updated_at
    from latest

)

select * from renamed
