-- Error: fails the build when the events whose name the health model does not know are more than
-- var max_unmapped_event_share of all events (setting CSW_MAX_UNMAPPED_EVENT_SHARE). Then the
-- configured feature map does not describe this product, and a score computed with it would be
-- meaningless. One row per unknown event name (child_rows = its events), with the share of all
-- unknown events; stored in schema audit. Map the events in the configured health model, or raise
-- the setting if this product's vocabulary is mostly irrelevant by design.
--
-- The share is one ratio of integer counts, compared exactly: unmapped events > limit x all
-- events, the limit a decimal. Adding up the per-name floating shares could exceed 1 by
-- rounding (1/13 + 4 x 3/13 = 1.0000000000000002) and fail even the maximum limit 1.
{{ config(
    severity='error',
    store_failures=true,
    schema='audit',
    tags=['vocabulary'],
) }}

{%- set max_share = cs_metric_var('max_unmapped_event_share') %}

with vocabulary as (

    select * from {{ ref('int_event_vocabulary') }}

),

total as (

    select
        coalesce(sum(events) filter (where not is_known), 0) as unmapped_events,
        coalesce(sum(events), 0)                              as all_events
    from vocabulary

)

select
    vocabulary.event_name,
    round(total.unmapped_events / total.all_events, 4) as unmapped_share,
    {{ cs_threshold(max_share) }}                       as max_unmapped_event_share,
    vocabulary.events                                   as child_rows
from vocabulary
cross join total
where not vocabulary.is_known
  and total.unmapped_events > {{ cs_threshold(max_share) }} * total.all_events
