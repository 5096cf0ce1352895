-- CRM customer-success activities: latest version per activity_id. Rename and cast only.
with source as (

    select * from {{ source('crm', 'activities') }}

),

latest as (

    select *
    from source
    qualify row_number() over (
        partition by activity_id
        order by updated_at desc, _loaded_at desc, _source_file desc, _source_row desc
    ) = 1

),

renamed as (

    select
        cast(activity_id as string)   as activity_id,
        cast(account_id as string)    as account_id,
        cast(type as string)          as activity_type,
        cast(occurred_at as timestamp) as occurred_at,
        cast(attended as boolean)      as attended,
        cast(updated_at as timestamp)  as updated_at
    from latest

)

select * from renamed
