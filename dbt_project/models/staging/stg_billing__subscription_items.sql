-- Billing subscription item versions (the price history): latest version per item_id + valid_from. Rename and cast only.
with source as (

    select * from {{ source('billing', 'subscription_items') }}

),

latest as (

    select *
    from source
    qualify row_number() over (
        partition by item_id, valid_from
        order by updated_at desc, _loaded_at desc, _source_file desc, _source_row desc
    ) = 1

),

renamed as (

    select
        cast(item_id as string)               as item_id,
        cast(subscription_id as string)       as subscription_id,
        cast(plan_id as string)               as plan_id,
        cast(quantity as bigint)               as quantity,
        cast(unit_amount as decimal(18,4))     as unit_amount,
        cast(currency as string)              as currency,
        cast(billing_interval as string)      as billing_interval,
        cast(interval_count as bigint)         as interval_count,
        cast(discount_percent as decimal(9,4)) as discount_percent,
        cast(valid_from as timestamp)          as valid_from,
        cast(valid_to as timestamp)            as valid_to,
        cast(updated_at as timestamp)          as updated_at
    from latest

)

select * from renamed
