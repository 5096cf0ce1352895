-- The one pass over product events: events per user, UTC day and event name. Every other
-- customer-success model reads this fact (or the facts built from it), never the events, so the
-- large table is aggregated once. Independent of the health-model configuration and of as_of
-- (one row per day that happened), so it can become an incremental model keyed on
-- (user_id, activity_date, event_name) without changing anything downstream.
with events as (

    select * from {{ ref('stg_product__events') }}

),

final as (

    select
        account_id,
        user_id,
        cast(occurred_at as date) as activity_date,
        event_name,
        count(*)                  as events
    from events
    group by account_id, user_id, cast(occurred_at as date), event_name

)

select * from final
