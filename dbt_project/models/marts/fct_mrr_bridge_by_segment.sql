-- The MRR bridge in the finance layout by segment: one row per month and segment (the account's
-- current CRM segment; `unmapped` for billing customers without a CRM account). Summed over the
-- segments of a month, every column equals fct_mrr_bridge's.
-- The computation is macros/segment_shapes.sql (mrr_bridge_select), shared with fct_mrr_bridge.
{{ mrr_bridge_select(ref('fct_mrr_monthly'), by_segment=true) }}
