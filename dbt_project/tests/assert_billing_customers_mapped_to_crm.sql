-- Warns (does not fail the build) with one row per billing customer whose revenue cannot be
-- attributed to a CRM account. Their MRR is still reported, under account_id
-- `unmapped:<billing_customer_id>` and segment `unmapped`; fix the mapping in the CRM or billing.
-- A referential check like the orphan_keys tests: failures stored in schema audit for the summary.
{{ config(severity='warn', store_failures=true, schema='audit', tags=['referential']) }}

select
    billing_customer_id,
    account_id,
    crm_account_id,
    unmapped_reason,
    subscription_count
from {{ ref('int_unmapped_billing_customers') }}
