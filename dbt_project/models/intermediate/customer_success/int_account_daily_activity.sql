-- One row per account and UTC day with at least one event: events and active users (users with
-- at least one event that day). Incremental on activity_date, from int_user_daily_activity.
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='activity_date',
        on_schema_change='append_new_columns',
    )
}}

{%- set date_ranges = touched_daily_fact_ranges(ref('int_user_daily_activity')) if is_incremental() else [] %}

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
        sum(events)        as events,
        count(*)           as active_users,
        max(max_loaded_at) as max_loaded_at
    from user_days
    group by account_id, activity_date

)

select * from final
