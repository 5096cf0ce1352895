-- Warns with one row per event name seen in the warehouse that the health model's `events` (the
-- feature map) does not know, with its number of events (child_rows), accounts and share of all
-- events. Such events count as activity but map to no feature: add them to the `events` of the
-- configured health model (CSW_HEALTH_MODEL), with a feature or `feature: null`, or with
-- `counts_as_activity: false` when they are not activity. Failures are stored in schema audit.
{{ config(
    severity='warn',
    store_failures=true,
    schema='audit',
    tags=['vocabulary'],
) }}

select
    event_name,
    accounts,
    first_seen_on,
    last_seen_on,
    round(share_of_events, 4) as share_of_events,
    events                    as child_rows
from {{ ref('int_event_vocabulary') }}
where not is_known
