-- Billing customers: latest version per billing_customer_id. Rename and cast only.
with source as (

    select * from {{ source('billing', 'customers') }}

),

latest as (

    select *
    from source
    qualify row_number() over (
        partition by billing_customer_id
        order by updated_at desc, _loaded_at desc, _source_file desc, _source_row desc
    ) = 1

),

renamed as (

    select
        cast(billing_customer_id as string) as billing_customer_id,
        cast(account_id as string)          as account_id,
        cast(currency as string)            as currency,
        cast(created_at as timestamp)        as created_at,
        cast(updated_at as timestamp)        as updated_at
    from latest

)

select * from renamed
