-- CRM accounts: latest version per account_id. Rename and cast only.
with source as (

    select * from {{ source('crm', 'accounts') }}

),

latest as (

    select *
    from source
    qualify row_number() over (
        partition by account_id
        order by updated_at desc, _loaded_at desc, _source_file desc, _source_row desc
    ) = 1

),

renamed as (

    select
        cast(account_id as string)   as account_id,
        cast(name as string)         as account_name,
        cast(segment as string)      as segment,
        cast(industry as string)     as industry,
        cast(region as string)       as region,
        cast(owner as string)        as owner,
        cast(created_at as timestamp) as created_at,
        cast(updated_at as timestamp) as updated_at
    from latest

)

select * from renamed
