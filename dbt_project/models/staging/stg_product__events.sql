-- Product usage events: one row per event_id (event table: deduplicated again defensively). Rename and cast only.
with source as (

    select * from {{ source('product', 'events') }}

),

latest as (

    select *
    from source
    qualify row_number() over (
        partition by event_id
        order by _loaded_at desc, _source_file desc, _source_row desc
    ) = 1

),

renamed as (

    select
        cast(event_id as varchar)      as event_id,
        cast(account_id as varchar)    as account_id,
        cast(user_id as varchar)       as user_id,
        cast(event_name as varchar)    as event_name,
        cast(occurred_at as timestamp) as occurred_at,
        cast(properties as json)       as properties
    from latest

)

select * from renamed
