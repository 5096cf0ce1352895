-- Product usage events: one row per event_id. Rename and cast only, no deduplication here:
-- ingestion loads an event row only when its event_id is not in raw.events yet (docs/ingestion.md),
-- so the source is already unique on event_id and a window over every event on every read would
-- be pure cost. Being a plain projection, filters on occurred_at / _loaded_at reach the scan of
-- raw.events (zonemap pruning), which the incremental int_user_daily_events relies on.
with source as (

    select * from {{ source('product', 'events') }}

),

renamed as (

    select
        cast(event_id as varchar)      as event_id,
        cast(account_id as varchar)    as account_id,
        cast(user_id as varchar)       as user_id,
        cast(event_name as varchar)    as event_name,
        cast(occurred_at as timestamp) as occurred_at,
        cast(properties as json)       as properties,
        -- lineage: when the row was loaded; the incremental daily fact's watermark
        cast(_loaded_at as timestamp)  as _loaded_at
    from source

)

select * from renamed
