-- Time-to-value cohorts by segment: one row per start month and segment. Counts add up to
-- fct_ttv_cohorts; median_ttv_days does not (it is recomputed per segment).
-- The computation is macros/segment_shapes.sql (ttv_cohorts_select), shared with fct_ttv_cohorts.
{{ ttv_cohorts_select(ref('fct_time_to_value'), by_segment=true) }}
