-- One row per account and UTC day with at least one event that counts as activity: those events
-- and active users (users with at least one such event that day). Incremental on activity_date,
-- from int_user_daily_activity; like it, every date is rebuilt when the events left out of
-- activity change (activity_events_hash), since those rebuilt rows keep their max_loaded_at.
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
        ref('int_user_daily_activity'),
        rebuild_all=built_with_other_config('activity_events_hash', activity_events_hash()),
    ) %}
{%- endif %}

with user_days as (

    select * from {{ ref('int_user_daily_activity') }}
    {%- if is_incremental() %}
    where {{ in_date_ranges('activity_date', date_ranges) }}
    {%- endif %}

),

final as (

    select
        account_id,
        activity_date,
        cast(sum(events) as bigint) as events,
        count(*)           as active_users,
        max(max_loaded_at) as max_loaded_at,
        '{{ activity_events_hash() }}' as activity_events_hash
    from user_days
    group by account_id, activity_date

)

select * from final
