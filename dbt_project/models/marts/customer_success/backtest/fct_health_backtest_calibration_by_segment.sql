-- fct_health_backtest_calibration by segment: the same statistics computed within each segment (the account's CRM
-- segment on the scored date), one more key column `segment`. Incremental like fct_health_backtest_calibration.
-- The computation is macros/backtest.sql (backtest_calibration_select), shared with fct_health_backtest_calibration.
{{ backtest_calibration_select(ref('int_backtest_scores'), by_segment=true) }}
