-- Shown in Dagster as an asset check of fct_ttv_cohorts.
{{ config(meta={'dagster': {'ref': {'name': 'fct_ttv_cohorts'}}}) }}
-- Fails (one row per broken check and cohort row) unless fct_ttv_cohorts (labelled segment `all`
-- here) and fct_ttv_cohorts_by_segment add up:
--   accounts_split: accounts = reached_accounts + censored_accounts;
--   within_monotone: accounts_reached_within_7d <= 14d <= 30d <= 60d <= 90d <= reached_accounts;
--   observed_bounds: accounts_reached_within_<n>d <= observed_<n>d_accounts <= accounts, and
--     observed_7d >= 14d >= ... >= 90d (an account observed n days is observed fewer days too);
--   segments_vs_all: the segments of a start month add up to its `all` row;
--   matches_time_to_value: the `all` rows count fct_time_to_value's accounts per start month;
--   median_reached: a median exists only when some account reached first value.
with cohorts as (

    {{ totals_and_segments(ref('fct_ttv_cohorts'), ref('fct_ttv_cohorts_by_segment')) }}

),

ttv as (

    select start_month, count(*) as accounts
    from {{ ref('fct_time_to_value') }}
    group by start_month

),

segment_sums as (

    select start_month, sum(accounts) as accounts, sum(reached_accounts) as reached_accounts
    from cohorts
    where segment <> 'all'
    group by start_month

)

select start_month, segment, 'accounts_split' as check_name
from cohorts
where accounts <> reached_accounts + censored_accounts

union all

select start_month, segment, 'within_monotone'
from cohorts
where not (accounts_reached_within_7d <= accounts_reached_within_14d
       and accounts_reached_within_14d <= accounts_reached_within_30d
       and accounts_reached_within_30d <= accounts_reached_within_60d
       and accounts_reached_within_60d <= accounts_reached_within_90d
       and accounts_reached_within_90d <= reached_accounts)

union all

select start_month, segment, 'observed_bounds'
from cohorts
where not (observed_90d_accounts <= observed_60d_accounts
       and observed_60d_accounts <= observed_30d_accounts
       and observed_30d_accounts <= observed_14d_accounts
       and observed_14d_accounts <= observed_7d_accounts
       and observed_7d_accounts <= accounts
       {%- for n in [7, 14, 30, 60, 90] %}
       and accounts_reached_within_{{ n }}d <= observed_{{ n }}d_accounts
       {%- endfor %})

union all

select cohorts.start_month, cohorts.segment, 'segments_vs_all'
from cohorts
left join segment_sums
    on segment_sums.start_month = cohorts.start_month
where cohorts.segment = 'all'
  and (segment_sums.accounts is distinct from cohorts.accounts
       or segment_sums.reached_accounts is distinct from cohorts.reached_accounts)

union all

select coalesce(cohorts.start_month, ttv.start_month), 'all', 'matches_time_to_value'
from (select * from cohorts where segment = 'all') as cohorts
full outer join ttv
    on ttv.start_month = cohorts.start_month
where cohorts.accounts is distinct from ttv.accounts

union all

select start_month, segment, 'median_reached'
from cohorts
where median_ttv_days is not null and reached_accounts = 0
