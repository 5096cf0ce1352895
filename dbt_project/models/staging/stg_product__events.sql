-- Product usage events: one row per event_id. Rename and cast only, no deduplication here:
-- ingestion loads an event row only when its event_id is not in raw.events yet (docs/ingestion.md),
-- so the source is already unique on event_id and a window over every event on every read would
-- be pure cost. Being a plain projection, filters on occurred_at / _loaded_at reach the scan of
-- raw.events (zonemap pruning), which the incremental int_user_daily_events relies on.
-- event_date is the lake's partition column (raw.events is a view over Hive-partitioned Parquet,
-- docs/ingestion.md): a filter on it skips whole partitions. A raw.events table without it (a
-- warehouse or test fixture from before the lake) gets the same value from occurred_at.
{%- set source_columns = [] %}
{%- if execute %}
    {%- set source_columns = adapter.get_columns_in_relation(source('product', 'events')) | map(attribute='name') | map('lower') | list %}
{%- endif %}
with source as (

    select * from {{ source('product', 'events') }}

),

renamed as (

    select
        cast(event_id as string)      as event_id,
        cast(account_id as string)    as account_id,
        cast(user_id as string)       as user_id,
        cast(event_name as string)    as event_name,
        cast(occurred_at as timestamp) as occurred_at,
        {{ cast_json("properties") }}       as properties,
        -- lineage: when the row was loaded; the incremental daily fact's watermark
        cast(_loaded_at as timestamp)  as _loaded_at,
        -- UTC date of occurred_at: the lake partition (pruned on), or computed
        {%- if 'event_date' in source_columns %}
        cast(event_date as date)       as event_date
        {%- else %}
        cast(occurred_at as date)      as event_date
        {%- endif %}
    from source

)

select * from renamed
