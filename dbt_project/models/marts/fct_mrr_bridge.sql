-- The MRR bridge in the finance layout: one row per month and segment (`all` and each segment).
-- starting + new + expansion + reactivation - contraction - churned = ending, exactly, with every
-- movement column a positive magnitude. starting_mrr_usd is the total MRR of the previous month,
-- ending_mrr_usd the total of the month (both including accounts at 0).
with monthly as (

    select * from {{ ref('fct_mrr_monthly') }}

),

by_segment as (

    select * from monthly
    union all
    select * replace ('all' as segment) from monthly

),

aggregated as (

    select
        month,
        segment,
        sum(previous_mrr_usd)                                             as starting_mrr_usd,
        coalesce(sum(mrr_change_usd) filter (where movement = 'new'), 0)          as new_mrr_usd,
        coalesce(sum(mrr_change_usd) filter (where movement = 'expansion'), 0)    as expansion_mrr_usd,
        coalesce(sum(mrr_change_usd) filter (where movement = 'reactivation'), 0) as reactivation_mrr_usd,
        coalesce(-sum(mrr_change_usd) filter (where movement = 'contraction'), 0) as contraction_mrr_usd,
        coalesce(-sum(mrr_change_usd) filter (where movement = 'churn'), 0)       as churned_mrr_usd,
        sum(mrr_usd)                                                      as ending_mrr_usd,
        count(*) filter (where previous_mrr_usd > 0)                      as starting_accounts,
        count(*) filter (where movement = 'new')                          as new_accounts,
        count(*) filter (where movement = 'expansion')                    as expansion_accounts,
        count(*) filter (where movement = 'reactivation')                 as reactivation_accounts,
        count(*) filter (where movement = 'contraction')                  as contraction_accounts,
        count(*) filter (where movement = 'churn')                        as churned_accounts,
        count(*) filter (where mrr_usd > 0)                               as ending_accounts
    from by_segment
    group by month, segment

),

months as (

    select distinct month from monthly

),

segments as (

    select distinct segment from by_segment

),

grid as (

    select months.month, segments.segment
    from months
    cross join segments

),

final as (

    select
        cast(grid.month as date)                                           as month,
        cast(grid.segment as varchar)                                      as segment,
        cast(coalesce(a.starting_mrr_usd, 0) as decimal(18, 4))            as starting_mrr_usd,
        cast(coalesce(a.new_mrr_usd, 0) as decimal(18, 4))                 as new_mrr_usd,
        cast(coalesce(a.expansion_mrr_usd, 0) as decimal(18, 4))           as expansion_mrr_usd,
        cast(coalesce(a.reactivation_mrr_usd, 0) as decimal(18, 4))        as reactivation_mrr_usd,
        cast(coalesce(a.contraction_mrr_usd, 0) as decimal(18, 4))         as contraction_mrr_usd,
        cast(coalesce(a.churned_mrr_usd, 0) as decimal(18, 4))             as churned_mrr_usd,
        cast(coalesce(a.ending_mrr_usd, 0) as decimal(18, 4))              as ending_mrr_usd,
        cast(coalesce(a.starting_accounts, 0) as bigint)                   as starting_accounts,
        cast(coalesce(a.new_accounts, 0) as bigint)                        as new_accounts,
        cast(coalesce(a.expansion_accounts, 0) as bigint)                  as expansion_accounts,
        cast(coalesce(a.reactivation_accounts, 0) as bigint)               as reactivation_accounts,
        cast(coalesce(a.contraction_accounts, 0) as bigint)                as contraction_accounts,
        cast(coalesce(a.churned_accounts, 0) as bigint)                    as churned_accounts,
        cast(coalesce(a.ending_accounts, 0) as bigint)                     as ending_accounts
    from grid
    left join aggregated as a
        on  a.month = grid.month
        and a.segment = grid.segment

)

select * from final
