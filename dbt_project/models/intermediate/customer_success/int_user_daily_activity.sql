-- One row per user and UTC day with at least one event (any event counts as activity): the
-- user is active that day. Incremental like int_user_daily_events, which it is built from: a run
-- rebuilds the dates whose fact rows changed since its own watermark (max_loaded_at), so a daily
-- run reads one day of the fact, not all of its history (docs/health-model.md).
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='activity_date',
        on_schema_change='append_new_columns',
    )
}}

{%- set date_ranges = touched_daily_fact_ranges(ref('int_user_daily_events')) if is_incremental() else [] %}

with user_events as (

    select * from {{ ref('int_user_daily_events') }}
    {%- if is_incremental() %}
    where {{ in_date_ranges('activity_date', date_ranges) }}
    {%- endif %}

),

final as (

    select
        user_id,
        account_id,
        activity_date,
        sum(events)        as events,
        max(max_loaded_at) as max_loaded_at
    from user_events
    group by user_id, account_id, activity_date

)

select * from final
