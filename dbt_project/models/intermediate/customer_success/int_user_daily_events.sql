-- The one pass over product events: events per user, UTC day and event name. Every other
-- customer-success model reads this fact (or the facts built from it), never the events, so the
-- large table is aggregated once. Independent of the health-model configuration and of as_of
-- (one row per day that happened), so it is incremental:
--
-- * max_loaded_at is the latest raw _loaded_at among the events of the row; the largest over the
--   table is the watermark: every event loaded up to it is already counted.
-- * An incremental run finds the UTC dates of the events loaded after the watermark (a new day,
--   late events for an old day) and rebuilds exactly those dates from all their events
--   (delete+insert on activity_date). A date's rows depend only on that date's events, and raw
--   events are never updated or deleted (ingestion inserts an event_id once), so the result is
--   the table a full refresh builds. Nothing loaded since the last run: no date, nothing changes.
-- * The watermark and the touched dates are read first and written into the query as literals,
--   contiguous dates merged into ranges, so both scans of raw.events prune by zonemap on
--   _loaded_at (appended in load order) and occurred_at (files land day by day), and the rebuild
--   by lake partition (event_date).
-- * A table built before max_loaded_at existed has no watermark: the run rebuilds every date and
--   adds the column (on_schema_change). `dbt build --full-refresh` rebuilds it from scratch.
-- Assumes _loaded_at grows from one load to the next (one writer; docs/ingestion.md).
{{
    config(
        materialized='incremental',
        tags=['daily_fact'],
        incremental_strategy=daily_fact_strategy(),
        unique_key='activity_date',
        partition_by=daily_fact_partitions(),
        on_schema_change='append_new_columns',
    )
}}

{%- set date_ranges = [] %}
{%- if execute and is_incremental() %}
    {%- set watermark = daily_fact_watermark() %}
    {%- set touched_sql %}
        select distinct cast(occurred_at as date) as activity_date
        from {{ ref('stg_product__events') }}
        {%- if watermark is not none %}
        where _loaded_at > timestamp '{{ watermark }}'
        {%- endif %}
    {%- endset %}
    {%- set date_ranges = date_ranges_of(touched_sql) %}
{%- endif %}

with events as (

    select * from {{ ref('stg_product__events') }}
    {%- if is_incremental() %}
    -- the UTC dates touched by events loaded since the last run (none: no rows); the same
    -- ranges on event_date (the lake's partition column) skip the other dates' partitions
    where ({{ in_date_ranges('occurred_at', date_ranges, 'timestamp') }})
      and ({{ in_date_ranges('event_date', date_ranges) }})
    {%- endif %}

),

final as (

    select
        account_id,
        user_id,
        cast(occurred_at as date) as activity_date,
        event_name,
        count(*)                  as events,
        max(_loaded_at)           as max_loaded_at
    from events
    group by account_id, user_id, cast(occurred_at as date), event_name

)

select * from final
