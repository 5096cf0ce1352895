-- MRR per account and month (contract definition): the USD MRR of the item versions in force on
-- the month's measurement day, summed per account and rounded half away from zero once, to
-- 4 decimals (DECIMAL(18,4)). Every revenue mart adds up these stored values, so totals, the MRR
-- bridge and retention reconcile exactly. Only account-months with an item in force appear.
with item_mrr as (

    select * from {{ ref('int_subscription_item_mrr_monthly') }}

),

final as (

    select
        account_id,
        month,
        measured_on,
        cast(sum(mrr_usd) as decimal(18, 4)) as mrr_usd,
        count(*)                             as item_count
    from item_mrr
    group by account_id, month, measured_on

)

select * from final
