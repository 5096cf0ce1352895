-- MRR per account and month with its movement against the previous month. One row per account
-- and month, from the account's first month with MRR > 0 through the reporting month (the month
-- of var as_of); months at zero after a churn are kept (movement `flat`, MRR 0) so an account's
-- history has no gaps, until a reactivation.
{%- set as_of = as_of_date() %}

with account_mrr as (

    select * from {{ ref('int_account_mrr_monthly') }}

),

crm_accounts as (

    select * from {{ ref('stg_crm__accounts') }}

),

first_months as (

    select
        account_id,
        min(month) as first_month
    from account_mrr
    where mrr_usd > 0
    group by account_id

),

spine as (

    select
        account_id,
        {{ month_series('first_month', month_start(as_of)) }} as month
    from first_months

),

filled as (

    select
        spine.account_id,
        spine.month,
        least({{ month_end('spine.month') }}, {{ as_of }}) as measured_date,
        coalesce(account_mrr.mrr_usd, 0)                   as mrr_usd
    from spine
    left join account_mrr
        on  account_mrr.account_id = spine.account_id
        and account_mrr.month = spine.month

),

with_history as (

    select
        *,
        coalesce(lag(mrr_usd) over by_month, 0) as previous_mrr_usd,
        coalesce(max(mrr_usd) over (
            partition by account_id order by month
            rows between unbounded preceding and 1 preceding
        ), 0)                                   as highest_earlier_mrr_usd
    from filled
    window by_month as (partition by account_id order by month)

),

final as (

    select
        cast(with_history.account_id as string)                    as account_id,
        cast(coalesce(crm_accounts.segment, 'unmapped') as string) as segment,
        cast(with_history.month as date)                            as month,
        cast(with_history.measured_date as date)                      as measured_date,
        cast(with_history.mrr_usd as decimal(18, 4))                as mrr_usd,
        cast(with_history.previous_mrr_usd as decimal(18, 4))       as previous_mrr_usd,
        cast(with_history.mrr_usd - with_history.previous_mrr_usd as decimal(18, 4))
                                                                    as mrr_change_usd,
        cast(case
            when with_history.previous_mrr_usd = 0 and with_history.mrr_usd > 0
                then case when with_history.highest_earlier_mrr_usd > 0
                    then 'reactivation' else 'new' end
            when with_history.previous_mrr_usd > 0 and with_history.mrr_usd = 0 then 'churn'
            when with_history.mrr_usd > with_history.previous_mrr_usd then 'expansion'
            when with_history.mrr_usd < with_history.previous_mrr_usd then 'contraction'
            else 'flat'
        end as string)                                             as movement
    from with_history
    left join crm_accounts
        on crm_accounts.account_id = with_history.account_id

)

select * from final
