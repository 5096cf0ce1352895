-- CRM NPS survey responses: one row per response_id (event table: deduplicated again defensively). Rename and cast only.
with source as (

    select * from {{ source('crm', 'nps_responses') }}

),

latest as (

    select *
    from source
    qualify row_number() over (
        partition by response_id
        order by _loaded_at desc, _source_file desc, _source_row desc
    ) = 1

),

renamed as (

    select
        cast(response_id as string)    as response_id,
        cast(account_id as string)     as account_id,
        cast(contact_id as string)     as contact_id,
        cast(responded_at as timestamp) as responded_at,
        cast(score as bigint)           as score,
        cast(comment as string)        as comment
    from latest

)

select * from renamed
