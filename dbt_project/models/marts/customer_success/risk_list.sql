-- The risk list as of the reporting date D (var as_of): the accounts scored at D (rows of
-- fct_account_health with as_of_date = D) that are in a listed health band (lists.risk.health_bands,
-- default red), or have churn_risk >= lists.risk.min_churn_risk, or renew within
-- lists.risk.renewal_within_days with health_score < lists.risk.renewal_health_below.
-- reasons: the rules that fired, in words, separated by '; ' (the rows of risk_list_reasons, in
-- reason_order; both from macros/lists.sql). play: red and high churn risk ->
-- 'save plan + executive escalation'; red -> 'executive escalation'; high risk -> 'save plan';
-- otherwise 'check-in'. arr_at_risk_usd = ARR on D (MRR on D x 12). churn_probability,
-- churn_model_version and expected_arr_lost_usd (probability x ARR) come from the learned churn
-- model (fct_account_health; null without an accepted fit for D, docs/churn-model.md).
-- list_rank orders the list by lists.risk.rank_by: `arr` (default) by ARR at risk, largest
-- first; `expected_arr_lost` by expected ARR lost, largest first, then ARR at risk, when an
-- accepted churn model scores D, else by ARR at risk. Ties by account_id. ranked_by says which
-- order was used, and why ARR when expected_arr_lost was asked for. No contact e-mail or
-- person's name: owner is the account's CSM handle.
{%- set as_of = as_of_date() %}
{%- set hm = health_model() %}
{%- set risk = hm['lists']['risk'] %}
{%- set rank_by = risk.get('rank_by', 'arr') if risk else 'arr' %}

with health as (

    select * from {{ ref('fct_account_health') }}
    where as_of_date = {{ as_of }}

),

crm_accounts as (

    select * from {{ ref('stg_crm__accounts') }}

),

model as (

    -- the churn model that scored D, if any (one fit scores every account of a date)
    select max(churn_model_version) as churn_model_version
    from health
    where churn_probability is not null

),

ordering as (

    select
        {%- if rank_by == 'expected_arr_lost' %}
        churn_model_version is not null                                             as by_expected_loss,
        case
            when churn_model_version is not null
                then 'expected_arr_lost_usd (churn model ' || churn_model_version || ')'
            else 'arr_at_risk_usd: lists.risk.rank_by is expected_arr_lost, but no accepted'
                || ' churn model scores ' || strftime({{ as_of }}, '%Y-%m-%d')
                || ' (csw fit-churn-model; docs/churn-model.md)'
        end                                                                         as ranked_by
        {%- else %}
        false                                                                       as by_expected_loss,
        'arr_at_risk_usd'                                                           as ranked_by
        {%- endif %}
    from model

),

flagged as (

    {{ risk_list_flagged('health') }}

),

reason_rows as (

    -- one row per reason (macros/lists.sql; risk_list_reasons publishes them)
    {{ risk_list_reason_rows('flagged') }}

),

reasons as (

    select
        account_id,
        string_agg(reason, '; ' order by reason_order)                              as reasons
    from reason_rows
    group by account_id

),

listed as (

    select
        flagged.*,
        coalesce(reasons.reasons, '')                                               as reasons,
        case
            when health_band = 'red' and churn_risk_band = 'high' then 'save plan + executive escalation'
            when health_band = 'red' then 'executive escalation'
            when churn_risk_band = 'high' then 'save plan'
            else 'check-in'
        end                                                                         as play
    from flagged
    left join reasons
        on reasons.account_id = flagged.account_id
    where is_listed_band or is_high_churn_risk or is_renewal_at_risk

),

final as (

    select
        cast(row_number() over (
            order by
                case when ordering.by_expected_loss then listed.expected_arr_lost_usd end desc nulls last,
                listed.arr_usd desc,
                listed.account_id
        ) as integer)                                       as list_rank,
        cast(listed.account_id as string)                  as account_id,
        cast(crm_accounts.account_name as string)          as account_name,
        cast(crm_accounts.owner as string)                 as owner,
        cast(crm_accounts.segment as string)               as segment,
        cast(listed.arr_usd as decimal(18, 4))              as arr_at_risk_usd,
        cast(listed.renewal_date as date)                   as renewal_date,
        cast(listed.health_score as integer)                as health_score,
        cast(listed.health_band as string)                 as health_band,
        cast(listed.churn_risk as integer)                  as churn_risk,
        cast(listed.churn_risk_band as string)             as churn_risk_band,
        cast(listed.reasons as string)                     as reasons,
        cast(listed.play as string)                        as play,
        cast(listed.churn_probability as double)            as churn_probability,
        cast(listed.churn_model_version as string)         as churn_model_version,
        cast(listed.expected_arr_lost_usd as decimal(18, 4)) as expected_arr_lost_usd,
        cast(ordering.ranked_by as string)                 as ranked_by,
        {{ health_model_version_columns() }},
        cast(listed.as_of_date as date)                     as as_of_date
    from listed
    left join crm_accounts
        on crm_accounts.account_id = listed.account_id
    cross join ordering

)

select * from final
order by list_rank
