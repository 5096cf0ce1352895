-- The backtest's calibration: for every scorer with a probability (churn_probability, the
-- learned model's), its rows (per health-model version and horizon; by segment in
-- fct_health_backtest_calibration_by_segment) binned by predicted probability in tenths (probability_bin k: k/10 <= p < (k+1)/10,
-- p = 1 in bin 9; int_backtest_scores' tests keep p within 0..1), the mean predicted probability against the observed churn rate. Calibrated:
-- the two agree in every bin. Scorers without a probability have no rows here.
--
-- Incremental like fct_health_backtest (the folder config in dbt_project.yml): a run replaces its
-- own version's and horizon's rows.
-- The computation is macros/backtest.sql (backtest_calibration_select), shared with fct_health_backtest_calibration_by_segment.
{{ backtest_calibration_select(ref('int_backtest_scores'), by_segment=false) }}
