-- Shown in Dagster as an asset check of fct_mrr_movements.
{{ config(meta={'dagster': {'ref': {'name': 'fct_mrr_movements'}}}) }}
-- Fails (one row per broken check, month and segment) unless the MRR movements reconcile to the
-- cent with the change in total MRR, in the company totals (fct_mrr_bridge, fct_mrr_movements;
-- labelled segment `all` here) and by segment (the `_by_segment` marts):
--   movements_vs_total_change: the signed movements of a month add up to ending - starting MRR;
--   bridge_identity: starting + new + expansion + reactivation - contraction - churned = ending;
--   ending_vs_account_mrr / starting_vs_account_mrr: the totals' ending (starting) MRR is the
--     month's (previous month's) total of int_account_mrr_monthly, computed independently;
--   segments_vs_all: the segments' bridges add up to the totals' bridge.
with movements as (

    select month, segment, sum(mrr_usd) as net_change_usd
    from (
        {{ totals_and_segments(ref('fct_mrr_movements'), ref('fct_mrr_movements_by_segment')) }}
    )
    group by month, segment

),

bridge as (

    {{ totals_and_segments(ref('fct_mrr_bridge'), ref('fct_mrr_bridge_by_segment')) }}

),

account_totals as (

    select month, sum(mrr_usd) as total_mrr_usd
    from {{ ref('int_account_mrr_monthly') }}
    group by month

),

segment_sums as (

    select
        month,
        sum(starting_mrr_usd) as starting_mrr_usd,
        sum(ending_mrr_usd)   as ending_mrr_usd
    from bridge
    where segment <> 'all'
    group by month

),

checks as (

    select
        'movements_vs_total_change' as check_name,
        bridge.month,
        bridge.segment,
        bridge.ending_mrr_usd - bridge.starting_mrr_usd as expected_usd,
        coalesce(movements.net_change_usd, 0)           as actual_usd
    from bridge
    left join movements
        on  movements.month = bridge.month
        and movements.segment = bridge.segment

    union all

    select
        'bridge_identity',
        month,
        segment,
        ending_mrr_usd,
        starting_mrr_usd + new_mrr_usd + expansion_mrr_usd + reactivation_mrr_usd
            - contraction_mrr_usd - churned_mrr_usd
    from bridge

    union all

    select
        'ending_vs_account_mrr',
        bridge.month,
        bridge.segment,
        coalesce(account_totals.total_mrr_usd, 0),
        bridge.ending_mrr_usd
    from bridge
    left join account_totals
        on account_totals.month = bridge.month
    where bridge.segment = 'all'

    union all

    select
        'starting_vs_account_mrr',
        bridge.month,
        bridge.segment,
        coalesce(account_totals.total_mrr_usd, 0),
        bridge.starting_mrr_usd
    from bridge
    left join account_totals
        on account_totals.month = {{ add_months('bridge.month', -1) }}
    where bridge.segment = 'all'

    union all

    select
        'segments_vs_all',
        bridge.month,
        bridge.segment,
        bridge.starting_mrr_usd + bridge.ending_mrr_usd,
        coalesce(segment_sums.starting_mrr_usd + segment_sums.ending_mrr_usd, 0)
    from bridge
    left join segment_sums
        on segment_sums.month = bridge.month
    where bridge.segment = 'all'

)

select *
from checks
where expected_usd is distinct from actual_usd
