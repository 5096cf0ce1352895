-- CRM contacts: latest version per contact_id. Rename and cast only.
with source as (

    select * from {{ source('crm', 'contacts') }}

),

latest as (

    select *
    from source
    qualify row_number() over (
        partition by contact_id
        order by updated_at desc, _loaded_at desc, _source_file desc, _source_row desc
    ) = 1

),

renamed as (

    select
        cast(contact_id as string)   as contact_id,
        cast(account_id as string)   as account_id,
        cast(email as string)        as email,
        cast(title as string)        as title,
        cast(role as string)         as role,
        cast(is_active as boolean)    as is_active,
        cast(started_at as date)      as started_at,
        cast(ended_at as date)        as ended_at,
        cast(updated_at as timestamp) as updated_at
    from latest

)

select * from renamed
