-- The MRR bridge in long form: one row per month, segment (`all` and each segment) and movement
-- (new, expansion, reactivation, contraction, churn, flat), every combination present (zeros
-- included). Sign convention: mrr_usd is the signed sum of the accounts' MRR changes, so it is
-- positive for new, expansion and reactivation, negative for contraction and churn, and 0 for
-- flat; the six rows of a month and segment add up exactly to the change of its total MRR.
-- fct_mrr_bridge has the same numbers in the finance layout (positive magnitudes).
with monthly as (

    select * from {{ ref('fct_mrr_monthly') }}

),

by_segment as (

    select month, segment, movement, mrr_change_usd, account_id from monthly
    union all
    select month, 'all' as segment, movement, mrr_change_usd, account_id from monthly

),

aggregated as (

    select
        month,
        segment,
        movement,
        sum(mrr_change_usd) as mrr_usd,
        count(*)            as account_count
    from by_segment
    group by month, segment, movement

),

months as (

    select distinct month from monthly

),

segments as (

    select distinct segment from by_segment

),

movements as (

    select *
    from (values
        ('new', 1),
        ('expansion', 2),
        ('reactivation', 3),
        ('contraction', 4),
        ('churn', 5),
        ('flat', 6)
    ) as movements (movement, movement_order)

),

grid as (

    select months.month, segments.segment, movements.movement, movements.movement_order
    from months
    cross join segments
    cross join movements

),

final as (

    select
        cast(grid.month as date)                              as month,
        cast(grid.segment as varchar)                         as segment,
        cast(grid.movement as varchar)                        as movement,
        cast(grid.movement_order as integer)                  as movement_order,
        cast(coalesce(aggregated.mrr_usd, 0) as decimal(18, 4)) as mrr_usd,
        cast(coalesce(aggregated.account_count, 0) as bigint) as account_count
    from grid
    left join aggregated
        on  aggregated.month = grid.month
        and aggregated.segment = grid.segment
        and aggregated.movement = grid.movement

)

select * from final
