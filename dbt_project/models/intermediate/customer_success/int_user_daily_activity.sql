-- One row per user and UTC day with at least one event that counts as activity (every event,
-- known or not, except those the health model marks `counts_as_activity: false`): the user is
-- active that day. Incremental like int_user_daily_events, which it is built from: a run
-- rebuilds the dates whose fact rows changed since its own watermark (max_loaded_at), so a daily
-- run reads one day of the fact, not all of its history (docs/health-model.md). The rows depend
-- on the events left out, so each row carries their hash (activity_events_hash): when the list
-- changes, the pre-hook deletes the rows built under the old one and the run rebuilds every date.
{{
    config(
        materialized='incremental',
        tags=['daily_fact'],
        incremental_strategy=daily_fact_strategy(),
        unique_key='activity_date',
        partition_by=daily_fact_partitions(),
        on_schema_change='append_new_columns',
        pre_hook="{{ delete_rows_of_other_config('activity_events_hash', activity_events_hash()) }}",
    )
}}

{%- set date_ranges = [] %}
{%- if is_incremental() %}
    {%- set date_ranges = touched_daily_fact_ranges(
        ref('int_user_daily_events'),
        rebuild_all=built_with_other_config('activity_events_hash', activity_events_hash()),
    ) %}
{%- endif %}

with user_events as (

    select * from {{ ref('int_user_daily_events') }}
    {%- if is_incremental() %}
    where {{ in_date_ranges('activity_date', date_ranges) }}
    {%- endif %}

),

activity_events as (

    select * from user_events
    where {{ counts_as_activity('event_name') }}

),

final as (

    select
        user_id,
        account_id,
        activity_date,
        cast(sum(events) as bigint) as events,
        max(max_loaded_at) as max_loaded_at,
        '{{ activity_events_hash() }}' as activity_events_hash
    from activity_events
    group by user_id, account_id, activity_date

)

select * from final
