-- CRM support tickets: latest version per ticket_id. Rename and cast only.
with source as (

    select * from {{ source('crm', 'support_tickets') }}

),

latest as (

    select *
    from source
    qualify row_number() over (
        partition by ticket_id
        order by updated_at desc, _loaded_at desc, _source_file desc, _source_row desc
    ) = 1

),

renamed as (

    select
        cast(ticket_id as string)     as ticket_id,
        cast(account_id as string)    as account_id,
        cast(created_at as timestamp)  as created_at,
        cast(resolved_at as timestamp) as resolved_at,
        cast(severity as string)      as severity,
        cast(status as string)        as status,
        cast(updated_at as timestamp)  as updated_at
    from latest

)

select * from renamed
