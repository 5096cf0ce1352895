-- Warns with one row per account_id that product events use and the CRM does not have, with the
-- number of its events (child_rows). Read from the daily account fact (one row per account and
-- day, built incrementally from the events), not from the events themselves: the same answer
-- for a fraction of the rows, and no second scan of the largest table. Attached in Dagster to
-- int_account_daily_activity (meta dagster.ref), where the events reach the models.
{{ config(
    severity='warn',
    store_failures=true,
    schema='audit',
    tags=['referential'],
    meta={'dagster': {'ref': {'name': 'int_account_daily_activity'}}},
) }}

{{ orphan_keys_sql(
    ref('int_account_daily_activity'), 'account_id',
    ref('stg_crm__accounts'), 'account_id',
    child_rows_sql='sum(child.events)',
) }}
