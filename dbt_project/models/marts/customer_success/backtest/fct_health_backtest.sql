-- The backtest: how well each scorer separated the accounts that churned (MRR went to 0 within
-- the churn horizon) from the others, over every scored date whose outcome is complete as of the
-- reporting date. One row per health-model version, horizon, scorer and segment (`all` and each
-- segment), from intermediate.int_backtest_scores.
--
-- auc: ROC AUC of risk_score (macros/backtest.sql backtest_auc: Mann-Whitney, ties at their
-- average rank); baseline_auc: the AUC of baseline_activity_30d on the SAME rows (the scorer's
-- accounts and dates in the segment), so a scorer that covers fewer dates (a learned model's
-- out-of-sample dates) is compared fairly; worse_than_baseline: auc < baseline_auc. brier_score:
-- mean squared error of the probability, for scorers with one.
--
-- Incremental, never fully refreshed (the folder config in dbt_project.yml): a run replaces the
-- rows of its own health-model version
-- and horizon (pre-hook + delete+insert) and keeps every other version's, so versions of the
-- model can be compared on one warehouse (the rows' evaluated_as_of says when each was computed).
{%- set as_of = as_of_date() %}
{%- set keys = backtest_group_columns() %}

with scored as (

    {{ backtest_rows_by_segment(ref('int_backtest_scores')) }}

),

-- Each scorer's rows with the baseline's risk on the same account, date and segment.
paired as (

    select
        scored.*,
        baseline.risk_score as baseline_risk_score
    from scored
    left join scored as baseline
        on  baseline.health_model_version = scored.health_model_version
        and baseline.horizon_days = scored.horizon_days
        and baseline.segment = scored.segment
        and baseline.account_id = scored.account_id
        and baseline.as_of_date = scored.as_of_date
        and baseline.scorer = 'baseline_activity_30d'

),

auc as (

    {{ backtest_auc('paired', keys, 'risk_score') }}

),

baseline_auc as (

    {{ backtest_auc('paired', keys, 'baseline_risk_score', auc='baseline_auc') }}

),

summary as (

    select
        {{ keys | join(', ') }},
        max(health_model_name)                                    as health_model_name,
        max(churn_model_version)                                  as churn_model_version,
        min(as_of_date)                                           as first_scored_date,
        max(as_of_date)                                           as last_scored_date,
        count(distinct as_of_date)                                as scored_dates,
        count(*)                                                  as scored_rows,
        count(distinct account_id)                                as accounts,
        sum(case when churned then 1 else 0 end)                  as churned_rows,
        avg(
            case
                when probability is not null then
                    (probability - case when churned then 1.0 else 0.0 end)
                    * (probability - case when churned then 1.0 else 0.0 end)
            end
        )                                                         as brier_score
    from scored
    group by {{ keys | join(', ') }}

),

final as (

    select
        cast({{ as_of }} as date)                                 as evaluated_as_of,
        cast(summary.horizon_days as integer)                     as horizon_days,
        cast(summary.health_model_version as varchar)             as health_model_version,
        cast(summary.health_model_name as varchar)                as health_model_name,
        cast(summary.churn_model_version as varchar)              as churn_model_version,
        cast(summary.scorer as varchar)                           as scorer,
        cast(summary.segment as varchar)                          as segment,
        cast(summary.first_scored_date as date)                   as first_scored_date,
        cast(summary.last_scored_date as date)                    as last_scored_date,
        cast(summary.scored_dates as bigint)                      as scored_dates,
        cast(summary.scored_rows as bigint)                       as scored_rows,
        cast(summary.accounts as bigint)                          as accounts,
        cast(summary.churned_rows as bigint)                      as churned_rows,
        cast({{ backtest_rate('summary.churned_rows', 'summary.scored_rows') }} as double)
                                                                  as churn_rate,
        cast(auc.auc as double)                                   as auc,
        cast(baseline_auc.baseline_auc as double)                 as baseline_auc,
        cast(auc.auc - baseline_auc.baseline_auc as double)       as auc_minus_baseline,
        cast(auc.auc < baseline_auc.baseline_auc as boolean)      as worse_than_baseline,
        cast(summary.brier_score as double)                       as brier_score
    from summary
    left join auc
        on  auc.health_model_version = summary.health_model_version
        and auc.horizon_days = summary.horizon_days
        and auc.scorer = summary.scorer
        and auc.segment = summary.segment
    left join baseline_auc
        on  baseline_auc.health_model_version = summary.health_model_version
        and baseline_auc.horizon_days = summary.horizon_days
        and baseline_auc.scorer = summary.scorer
        and baseline_auc.segment = summary.segment

)

select * from final
