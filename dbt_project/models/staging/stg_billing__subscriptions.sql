-- Billing subscriptions: latest version per subscription_id. Rename and cast only.
with source as (

    select * from {{ source('billing', 'subscriptions') }}

),

latest as (

    select *
    from source
    qualify row_number() over (
        partition by subscription_id
        order by updated_at desc, _loaded_at desc, _source_file desc, _source_row desc
    ) = 1

),

renamed as (

    select
        cast(subscription_id as string)      as subscription_id,
        cast(billing_customer_id as string)  as billing_customer_id,
        cast(status as string)               as status,
        cast(started_at as timestamp)         as started_at,
        cast(trial_end as timestamp)          as trial_end,
        cast(canceled_at as timestamp)        as canceled_at,
        cast(ended_at as timestamp)           as ended_at,
        cast(current_period_end as timestamp) as current_period_end,
        cast(updated_at as timestamp)         as updated_at
    from latest

)

select * from renamed
