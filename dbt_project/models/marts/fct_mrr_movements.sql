-- The MRR bridge in long form, company totals: one row per month and movement (new, expansion,
-- reactivation, contraction, churn, flat), every combination present (zeros included).
-- fct_mrr_movements_by_segment has the same rows per segment; they add up to these.
-- Sign convention: mrr_usd is the signed sum of the accounts' MRR changes, so it is positive for
-- new, expansion and reactivation, negative for contraction and churn, and 0 for flat; the six
-- rows of a month add up exactly to the change of its total MRR. fct_mrr_bridge has the same
-- numbers in the finance layout (positive magnitudes).
-- The computation is macros/segment_shapes.sql (mrr_movements_select), shared with the other shape.
{{ mrr_movements_select(ref('fct_mrr_monthly'), by_segment=false) }}
