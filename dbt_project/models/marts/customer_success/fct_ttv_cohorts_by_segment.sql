-- Time-to-value cohorts by segment: one row per start month and segment. Counts add up to
-- fct_ttv_cohorts; median_ttv_days and the reached_within_<n>d_share columns do not (each row
-- divides its own counts; fct_ttv_cohorts.sql states the censoring rule of the shares).
-- The computation is macros/segment_shapes.sql (ttv_cohorts_select), shared with fct_ttv_cohorts.
{{ ttv_cohorts_select(ref('fct_time_to_value'), by_segment=true) }}
