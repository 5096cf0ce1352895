-- The learned churn model applied in SQL, so every probability can be audited here: per account
-- and reported date, the calibrated probability of churning (MRR going to 0) within the churn
-- horizon, from the latest ACCEPTED fit (ml.churn_model_fits, written by metrics/churn_model.py)
-- that was fitted as of a date on or before as_of, with the current horizon (var
-- churn_horizon_days) and the current health-model version (its features include the health
-- model's points). Only dates on or after that fit's validation_from get a probability: those
-- are out of sample (the fit trained on earlier dates only). No such fit (none yet, none
-- accepted, another horizon or health model): no rows.
--
-- For each coefficient row of the fit (ml.churn_model_coefficients) and each (account, date):
--   x = the feature's value, or fill_value when null or absent
--   t = ln(1 + x) when transform = 'log1p', else x
--   z = (t - center) / scale
-- linear = intercept + sum(coefficient * z); the calibrated probability is the logistic sigmoid
-- of calibration_slope * linear + calibration_intercept (Platt scaling, fitted on the latest
-- training dates). docs/churn-model.md; tests/test_churn_model.py checks it equals scikit-learn's
-- predict_proba.
{%- set as_of = as_of_date() %}
{%- set horizon = var('churn_horizon_days') | int %}

with fits as (

    select * from {{ churn_model_source('churn_model_fits') }}

),

coefficients as (

    select * from {{ churn_model_source('churn_model_coefficients') }}

),

features as (

    select * from {{ ref('int_account_churn_features') }}

),

fit as (

    select *
    from fits
    where accepted
      and horizon_days = {{ horizon }}
      and health_model_version = {{ cs_literal(health_model_version().get('version')) }}
      and as_of <= {{ as_of }}
    order by as_of desc, fitted_at desc, churn_model_version
    limit 1

),

scored_rows as (

    select distinct
        features.account_id,
        features.as_of_date
    from features
    inner join fit
        on features.as_of_date >= fit.validation_from

),

terms as (

    select
        scored_rows.account_id,
        scored_rows.as_of_date,
        coefficients.coefficient * (
            case
                when coefficients.transform = 'log1p'
                    then ln(1 + coalesce(features.value, coefficients.fill_value))
                else coalesce(features.value, coefficients.fill_value)
            end - coefficients.center
        ) / coefficients.scale                                        as term
    from scored_rows
    cross join fit
    inner join coefficients
        on coefficients.churn_model_version = fit.churn_model_version
    left join features
        on  features.account_id = scored_rows.account_id
        and features.as_of_date = scored_rows.as_of_date
        and features.feature = coefficients.feature

),

linear as (

    select
        account_id,
        as_of_date,
        sum(term) as weighted_sum
    from terms
    group by account_id, as_of_date

),

calibrated as (

    select
        linear.account_id,
        linear.as_of_date,
        fit.churn_model_version,
        fit.calibration_slope * (fit.intercept + linear.weighted_sum) + fit.calibration_intercept
                                                                      as calibrated_logit
    from linear
    cross join fit

),

final as (

    select
        cast(account_id as string)          as account_id,
        cast(as_of_date as date)             as as_of_date,
        cast(churn_model_version as string) as churn_model_version,
        -- the sigmoid, in the form that cannot overflow exp()
        cast(
            case
                when calibrated_logit >= 0 then 1 / (1 + exp(-calibrated_logit))
                else exp(calibrated_logit) / (1 + exp(calibrated_logit))
            end
            as double
        )                                    as churn_probability
    from calibrated

)

select * from final
