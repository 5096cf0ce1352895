-- Shown in Dagster as an asset check of fct_account_health.
{{ config(meta={'dagster': {'ref': {'name': 'fct_account_health'}}}) }}
-- Fails (one row per account and broken check) unless the health rows of the reporting date
-- agree with dim_accounts, computed independently from the monthly MRR model:
--   scored_iff_current_mrr: an account is scored on as_of exactly when its current MRR is > 0;
--   arr: arr_usd equals dim_accounts.current_arr_usd;
--   renewal_date: renewal_date equals dim_accounts.next_renewal_date.
{%- set as_of = as_of_date() %}

with health as (

    select * from {{ ref('fct_account_health') }}
    where as_of_date = {{ as_of }}

),

accounts as (

    select * from {{ ref('dim_accounts') }}

),

joined as (

    select
        coalesce(health.account_id, accounts.account_id) as account_id,
        health.account_id is not null                     as is_scored,
        coalesce(accounts.current_mrr_usd, 0) > 0         as has_current_mrr,
        health.arr_usd,
        accounts.current_arr_usd,
        health.renewal_date,
        accounts.next_renewal_date
    from health
    full outer join accounts
        on accounts.account_id = health.account_id

)

select account_id, 'scored_iff_current_mrr' as check_name
from joined
where is_scored <> has_current_mrr

union all

select account_id, 'arr'
from joined
where is_scored and arr_usd is distinct from current_arr_usd

union all

select account_id, 'renewal_date'
from joined
where is_scored and renewal_date is distinct from next_renewal_date
