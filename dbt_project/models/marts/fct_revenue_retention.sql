-- Net and gross revenue retention (point-to-point cohort method, extract contract) per period
-- grain (month, quarter, year, trailing_12m), period and segment (`all` and each segment).
--
-- Cohort of a period: the accounts with MRR > 0 in the month before period_start; starting MRR is
-- their MRR in that month. End MRR is each cohort account's MRR in the period's last month, 0 when
-- churned (an account that churns and comes back inside the period counts at its end MRR); for
-- the period containing as_of, whose last month is not over, it is the MRR of the reporting month
-- measured on as_of, and is_complete is false. Accounts new in the period are not in the cohort.
--   NRR = sum(end) / sum(start);  GRR = sum(least(end, start)) / sum(start)
--   expansion = sum(greatest(end - start, 0)); contraction = sum(start - end) over cohort
--   accounts with 0 < end < start; churned = sum(start) over cohort accounts with end = 0;
--   so ending = starting + expansion - contraction - churned.
-- Ratios are DECIMAL(18,6), rounded half away from zero, and null when the cohort is empty.
-- Periods: every period whose cohort month is on or after the first month with any MRR, through
-- the period containing as_of.
{%- set as_of = as_of_date() %}

with monthly as (

    select * from {{ ref('fct_mrr_monthly') }}

),

bounds as (

    select
        min(month)               as first_month,
        {{ month_start(as_of) }} as reporting_month
    from monthly

),

months as (

    select
        cast(unnest(generate_series(first_month, reporting_month, interval 1 month)) as date)
            as month
    from bounds

),

period_starts as (

    select distinct 'month' as period_grain, month as period_start, 1 as period_months
    from months
    union all
    select distinct 'quarter', {{ month_start("date_trunc('quarter', month)") }}, 3
    from months
    union all
    select distinct 'year', {{ month_start("date_trunc('year', month)") }}, 12
    from months
    union all
    select distinct 'trailing_12m', {{ add_months('month', -11) }}, 12
    from months

),

periods as (

    select
        period_starts.period_grain,
        period_starts.period_start,
        {{ month_end(add_months('period_starts.period_start', 'period_starts.period_months - 1')) }}
                                                               as period_end,
        {{ add_months('period_starts.period_start', -1) }}    as cohort_month,
        least(
            {{ add_months('period_starts.period_start', 'period_starts.period_months - 1') }},
            bounds.reporting_month
        )                                                      as end_month
    from period_starts
    cross join bounds
    where period_starts.period_start > bounds.first_month
      and period_starts.period_start <= bounds.reporting_month

),

segments as (

    select 'all' as segment
    union
    select distinct segment from monthly

),

cohort_accounts as (

    select
        periods.period_grain,
        periods.period_start,
        starting.account_id,
        starting.segment,
        starting.mrr_usd                  as start_mrr_usd,
        coalesce(ending.mrr_usd, 0)       as end_mrr_usd
    from periods
    inner join monthly as starting
        on  starting.month = periods.cohort_month
        and starting.mrr_usd > 0
    left join monthly as ending
        on  ending.account_id = starting.account_id
        and ending.month = periods.end_month

),

cohort_by_segment as (

    select * from cohort_accounts
    union all
    select * replace ('all' as segment) from cohort_accounts

),

aggregated as (

    select
        period_grain,
        period_start,
        segment,
        count(*)                                                            as cohort_accounts,
        sum(start_mrr_usd)                                                  as starting_mrr_usd,
        sum(end_mrr_usd)                                                    as ending_mrr_usd,
        sum(greatest(end_mrr_usd - start_mrr_usd, 0))                       as expansion_usd,
        coalesce(sum(start_mrr_usd - end_mrr_usd)
            filter (where end_mrr_usd > 0 and end_mrr_usd < start_mrr_usd), 0) as contraction_usd,
        coalesce(sum(start_mrr_usd) filter (where end_mrr_usd = 0), 0)      as churned_usd,
        sum(least(end_mrr_usd, start_mrr_usd))                              as retained_usd
    from cohort_by_segment
    group by period_grain, period_start, segment

),

final as (

    select
        cast(periods.period_grain as varchar)                              as period_grain,
        cast(periods.period_start as date)                                 as period_start,
        cast(segments.segment as varchar)                                  as segment,
        cast(periods.period_end as date)                                   as period_end,
        cast(periods.cohort_month as date)                                 as cohort_month,
        cast(periods.end_month as date)                                    as end_month,
        cast(coalesce(a.cohort_accounts, 0) as bigint)                     as cohort_accounts,
        cast(coalesce(a.starting_mrr_usd, 0) as decimal(18, 4))            as starting_mrr_usd,
        cast(coalesce(a.ending_mrr_usd, 0) as decimal(18, 4))              as ending_mrr_usd,
        cast(coalesce(a.expansion_usd, 0) as decimal(18, 4))               as expansion_usd,
        cast(coalesce(a.contraction_usd, 0) as decimal(18, 4))             as contraction_usd,
        cast(coalesce(a.churned_usd, 0) as decimal(18, 4))                 as churned_usd,
        cast({{ decimal_ratio('a.ending_mrr_usd', 'a.starting_mrr_usd') }} as decimal(18, 6))
                                                                           as nrr,
        cast({{ decimal_ratio('a.retained_usd', 'a.starting_mrr_usd') }} as decimal(18, 6))
                                                                           as grr,
        periods.period_end <= {{ as_of }}                                  as is_complete
    from periods
    cross join segments
    left join aggregated as a
        on  a.period_grain = periods.period_grain
        and a.period_start = periods.period_start
        and a.segment = segments.segment

)

select * from final
