-- Shown in Dagster as an asset check of fct_revenue_retention.
{{ config(meta={'dagster': {'ref': {'name': 'fct_revenue_retention'}}}) }}
-- Fails (one row per broken check and retention row) unless every retention cohort is what it
-- claims to be:
--   starting_vs_cohort_month_mrr: starting MRR equals the total MRR, in the month before the
--     period (cohort_month), of the accounts with MRR > 0 then (of the row's segment in
--     fct_revenue_retention_by_segment, of all in fct_revenue_retention, labelled `all` here);
--     for the totals it is checked against int_account_mrr_monthly, computed independently;
--   cohort_accounts_vs_cohort_month: cohort_accounts is the number of those accounts;
--   ending_identity: ending = starting + expansion - contraction - churned;
--   ratios_null_iff_empty: nrr and grr are null exactly when the cohort is empty.
with retention as (

    {{ totals_and_segments(ref('fct_revenue_retention'), ref('fct_revenue_retention_by_segment')) }}

),

monthly as (

    select * from {{ ref('fct_mrr_monthly') }}

),

account_totals as (

    select month, sum(mrr_usd) as total_mrr_usd
    from {{ ref('int_account_mrr_monthly') }}
    where mrr_usd > 0
    group by month

),

cohort_month_mrr as (

    select
        retention.period_grain,
        retention.period_start,
        retention.segment,
        coalesce(sum(monthly.mrr_usd), 0) as total_mrr_usd,
        count(monthly.account_id)         as cohort_month_accounts
    from retention
    left join monthly
        on  monthly.month = retention.cohort_month
        and monthly.mrr_usd > 0
        and (retention.segment = 'all' or monthly.segment = retention.segment)
    group by retention.period_grain, retention.period_start, retention.segment

),

checks as (

    select
        'starting_vs_cohort_month_mrr' as check_name,
        retention.period_grain,
        retention.period_start,
        retention.segment,
        cast(cohort_month_mrr.total_mrr_usd as string) as expected,
        cast(retention.starting_mrr_usd as string)     as actual
    from retention
    inner join cohort_month_mrr
        using (period_grain, period_start, segment)
    where cohort_month_mrr.total_mrr_usd <> retention.starting_mrr_usd

    union all

    select
        'starting_vs_account_mrr',
        retention.period_grain,
        retention.period_start,
        retention.segment,
        cast(coalesce(account_totals.total_mrr_usd, 0) as string),
        cast(retention.starting_mrr_usd as string)
    from retention
    left join account_totals
        on account_totals.month = retention.cohort_month
    where retention.segment = 'all'
      and coalesce(account_totals.total_mrr_usd, 0) <> retention.starting_mrr_usd

    union all

    select
        'cohort_accounts_vs_cohort_month',
        retention.period_grain,
        retention.period_start,
        retention.segment,
        cast(cohort_month_mrr.cohort_month_accounts as string),
        cast(retention.cohort_accounts as string)
    from retention
    inner join cohort_month_mrr
        using (period_grain, period_start, segment)
    where cohort_month_mrr.cohort_month_accounts <> retention.cohort_accounts

    union all

    select
        'ending_identity',
        period_grain,
        period_start,
        segment,
        cast(starting_mrr_usd + expansion_mrr_usd - contraction_mrr_usd - churned_mrr_usd as string),
        cast(ending_mrr_usd as string)
    from retention
    where starting_mrr_usd + expansion_mrr_usd - contraction_mrr_usd - churned_mrr_usd <> ending_mrr_usd

    union all

    select
        'ratios_null_iff_empty',
        period_grain,
        period_start,
        segment,
        cast(cohort_accounts as string),
        coalesce(cast(nrr as string), 'null') || ' / ' || coalesce(cast(grr as string), 'null')
    from retention
    where (cohort_accounts = 0) <> (nrr is null)
       or (cohort_accounts = 0) <> (grr is null)

)

select * from checks
