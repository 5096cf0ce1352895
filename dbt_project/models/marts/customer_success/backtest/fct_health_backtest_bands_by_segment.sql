-- fct_health_backtest_bands by segment: the same statistics computed within each segment (the account's CRM
-- segment on the scored date), one more key column `segment`. Incremental like fct_health_backtest_bands.
-- The computation is macros/backtest.sql (backtest_bands_select), shared with fct_health_backtest_bands.
{{ backtest_bands_select(ref('int_backtest_scores'), by_segment=true) }}
