-- The backtest by band: churn rate and count per band of each scorer that has bands
-- (health_score: health_band, churn_risk: churn_risk_band), per health-model version and horizon
-- (fct_health_backtest_bands_by_segment: and segment), over the scored dates with a complete outcome. Rows without
-- a band are left out, so scorers without bands (baseline_activity_30d, churn_probability) have no
-- rows here; a scorer's bands add up to its scored_rows in fct_health_backtest.
--
-- Incremental like fct_health_backtest (the folder config in dbt_project.yml): a run replaces its
-- own version's and horizon's rows.
-- The computation is macros/backtest.sql (backtest_bands_select), shared with fct_health_backtest_bands_by_segment.
{{ backtest_bands_select(ref('int_backtest_scores'), by_segment=false) }}
