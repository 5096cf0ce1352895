-- The MRR bridge in the finance layout, company totals: one row per month (no segment column;
-- fct_mrr_bridge_by_segment has one row per month and segment, and its rows add up to these).
-- starting + new + expansion + reactivation - contraction - churned = ending, exactly, with every
-- movement column a positive magnitude. starting_mrr_usd is the total MRR of the previous month,
-- ending_mrr_usd the total of the month (both including accounts at 0).
-- The computation is macros/segment_shapes.sql (mrr_bridge_select), shared with the other shape.
{{ mrr_bridge_select(ref('fct_mrr_monthly'), by_segment=false) }}
