-- Product users: latest version per user_id. Rename and cast only.
with source as (

    select * from {{ source('product', 'users') }}

),

latest as (

    select *
    from source
    qualify row_number() over (
        partition by user_id
        order by updated_at desc, _loaded_at desc, _source_file desc, _source_row desc
    ) = 1

),

renamed as (

    select
        cast(user_id as string)            as user_id,
        cast(account_id as string)         as account_id,
        cast(role as string)               as role,
        cast(provisioned_at as timestamp)   as provisioned_at,
        cast(deprovisioned_at as timestamp) as deprovisioned_at,
        cast(updated_at as timestamp)       as updated_at
    from latest

)

select * from renamed
