-- Billing plans: latest version per plan_id. Rename and cast only.
with source as (

    select * from {{ source('billing', 'plans') }}

),

latest as (

    select *
    from source
    qualify row_number() over (
        partition by plan_id
        order by updated_at desc, _loaded_at desc, _source_file desc, _source_row desc
    ) = 1

),

renamed as (

    select
        cast(plan_id as string)          as plan_id,
        cast(name as string)             as plan_name,
        cast(tier as string)             as tier,
        cast(billing_interval as string) as billing_interval,
        cast(seat_limit as bigint)        as seat_limit,
        cast(updated_at as timestamp)     as updated_at
    from latest

)

select * from renamed
