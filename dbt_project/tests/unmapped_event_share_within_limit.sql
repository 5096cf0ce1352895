-- Error: fails the build when the events whose name the health model does not know are more than
-- var max_unmapped_event_share of all events (setting CSW_MAX_UNMAPPED_EVENT_SHARE). Then the
-- configured feature map does not describe this product, and a score computed with it would be
-- meaningless. One row per unknown event name (child_rows = its events), with the share of all
-- unknown events; stored in schema audit. Map the events in the configured health model, or raise
-- the setting if this product's vocabulary is mostly irrelevant by design.
{{ config(
    severity='error',
    store_failures=true,
    schema='audit',
    tags=['vocabulary'],
) }}

{%- set max_share = cs_metric_var('max_unmapped_event_share') %}

with unknown as (

    select * from {{ ref('int_event_vocabulary') }}
    where not is_known

),

total as (

    select coalesce(sum(share_of_events), 0) as unmapped_share from unknown

)

select
    unknown.event_name,
    round(total.unmapped_share, 4)   as unmapped_share,
    {{ cs_threshold(max_share) }}     as max_unmapped_event_share,
    unknown.events                   as child_rows
from unknown
cross join total
where total.unmapped_share > {{ cs_threshold(max_share) }}
