-- The MRR bridge in long form by segment: one row per month, segment (the account's current CRM
-- segment; `unmapped` for billing customers without a CRM account) and movement, every
-- combination present. Same sign convention as fct_mrr_movements; summed over the segments of a
-- month and movement, mrr_usd and accounts equal fct_mrr_movements'.
-- The computation is macros/segment_shapes.sql (mrr_movements_select), shared with fct_mrr_movements.
{{ mrr_movements_select(ref('fct_mrr_monthly'), by_segment=true) }}
