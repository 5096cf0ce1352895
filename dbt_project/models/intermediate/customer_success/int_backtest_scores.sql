-- What the backtest evaluates, in long form: one row per scorer and scored (account, date) of the
-- health history (marts.fct_account_health) whose outcome is complete (int_account_churn_outcomes:
-- the date + the churn horizon is on or before as_of) and whose date is at least a week into the
-- product event history (activity_history_complete: before that the baseline and usage are
-- unrecorded, not zero), with the score, the score oriented so
-- that higher = riskier (risk_score), the scorer's band and probability when it has them, and
-- the outcome (churned: MRR went to 0 within the horizon). The marts fct_health_backtest* read
-- only this model.
--
-- Scorers (docs/metrics.md "Backtest"):
--   health_score           risk = -health_score,  band health_band
--   churn_risk             risk = churn_risk,     band churn_risk_band
--   baseline_activity_30d  risk = -(events counting as activity in the 30 days to the date,
--                          inclusive; int_account_daily_activity), no band. Fixed, whatever the
--                          health model's windows: the yardstick every score must beat.
--   churn_probability      risk = probability = the learned churn model's churn_probability
--                          (fct_account_health, from int_churn_predictions): only the dates the
--                          accepted fit scores, all out of sample (on or after its validation_from).
-- A scorer with a probability (0..1) fills `probability`; the marts calibrate every such scorer.
-- Rows whose risk_score is null are left out (a scorer that did not score the row).
{%- set as_of = as_of_date() %}

with health as (

    select
        account_id,
        as_of_date,
        segment,
        arr_usd,
        health_model_version,
        health_model_name,
        health_score,
        health_band,
        churn_risk,
        churn_risk_band,
        churn_probability,
        churn_model_version
    from {{ ref('fct_account_health') }}

),

outcomes as (

    select account_id, as_of_date, horizon_days, churned_within_horizon
    from {{ ref('int_account_churn_outcomes') }}
    where outcome_complete
      and activity_history_complete

),

-- The scored (account, date) pairs with a known outcome: the rows every scorer is evaluated on.
evaluated as (

    select
        health.*,
        outcomes.horizon_days,
        outcomes.churned_within_horizon as churned
    from health
    inner join outcomes
        on  outcomes.account_id = health.account_id
        and outcomes.as_of_date = health.as_of_date

),

activity as (

    select account_id, activity_date, events
    from {{ ref('int_account_daily_activity') }}
    where activity_date <= {{ as_of }}

),

baseline as (

    select
        evaluated.account_id,
        evaluated.as_of_date,
        coalesce(sum(activity.events), 0) as activity_events_30d
    from evaluated
    left join activity
        on  activity.account_id = evaluated.account_id
        and activity.activity_date <= evaluated.as_of_date
        and activity.activity_date > evaluated.as_of_date - 30
    group by evaluated.account_id, evaluated.as_of_date

),

-- One select per scorer, all with the same columns: account_id, as_of_date, scorer, score,
-- risk_score (higher = riskier; 0 - x, as -x gives -0.0 for 0), band, probability,
-- churn_model_version. A new scorer is one more `union all` here; the join below keeps only its
-- evaluated rows, so a scorer may cover fewer dates (churn_probability does: the marts compare
-- it with the baseline on its own rows).
scores as (

    select
        account_id,
        as_of_date,
        'health_score'                              as scorer,
        cast(health_score as double)                as score,
        0 - cast(health_score as double)            as risk_score,
        health_band                                 as band,
        cast(null as double)                        as probability,
        cast(null as string)                       as churn_model_version
    from evaluated

    union all

    select
        account_id,
        as_of_date,
        'churn_risk'                                as scorer,
        cast(churn_risk as double)                  as score,
        cast(churn_risk as double)                  as risk_score,
        churn_risk_band                             as band,
        cast(null as double)                        as probability,
        cast(null as string)                       as churn_model_version
    from evaluated

    union all

    select
        account_id,
        as_of_date,
        'baseline_activity_30d'                     as scorer,
        cast(activity_events_30d as double)         as score,
        0 - cast(activity_events_30d as double)     as risk_score,
        cast(null as string)                       as band,
        cast(null as double)                        as probability,
        cast(null as string)                       as churn_model_version
    from baseline

    union all

    select
        account_id,
        as_of_date,
        'churn_probability'                         as scorer,
        cast(churn_probability as double)           as score,
        cast(churn_probability as double)           as risk_score,
        cast(null as string)                       as band,
        cast(churn_probability as double)           as probability,
        churn_model_version
    from evaluated
    where churn_probability is not null

),

final as (

    select
        cast(evaluated.account_id as string)                           as account_id,
        cast(evaluated.as_of_date as date)                              as as_of_date,
        cast(coalesce(evaluated.segment, 'unknown') as string)         as segment,
        cast(evaluated.arr_usd as decimal(18, 4))                       as arr_usd,
        cast(evaluated.health_model_version as string)                 as health_model_version,
        cast(evaluated.health_model_name as string)                    as health_model_name,
        cast(evaluated.horizon_days as integer)                         as horizon_days,
        cast(scores.scorer as string)                                  as scorer,
        cast(scores.score as double)                                    as score,
        cast(scores.risk_score as double)                               as risk_score,
        cast(scores.band as string)                                    as band,
        cast(scores.probability as double)                              as probability,
        cast(scores.churn_model_version as string)                     as churn_model_version,
        cast(evaluated.churned as boolean)                              as churned
    from scores
    inner join evaluated
        on  evaluated.account_id = scores.account_id
        and evaluated.as_of_date = scores.as_of_date
    where scores.risk_score is not null

)

select * from final
