-- Net and gross revenue retention by segment: one row per period grain, period and segment (the
-- accounts' current segment). Money and counts add up to fct_revenue_retention; nrr and grr do not
-- (recompute them from ending_mrr_usd / starting_mrr_usd).
-- The computation is macros/segment_shapes.sql (revenue_retention_select), shared with fct_revenue_retention.
{{ revenue_retention_select(ref('fct_mrr_monthly'), by_segment=true) }}
