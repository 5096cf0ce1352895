-- Account health history: one row per account and reported date (every Monday from the first
-- Monday with any MRR through as_of, plus as_of itself), for the accounts scored on that date
-- (MRR on the day > 0), each row computed as of its date from the data available then (rows
-- dated on or before it; state from the rows' own dates). Score, band, every component's points
-- and measure, the change against health_score.change_days earlier, drivers, churn risk with
-- each signal's points, renewal date, MRR and ARR on the day. docs/health-model.md explains each
-- rule and its configuration key.
-- churn_probability: the learned churn model's calibrated probability of churning within the
-- churn horizon (int_churn_predictions: the latest accepted fit, out-of-sample dates only; null
-- otherwise), churn_model_version the fit that gave it, expected_arr_lost_usd = probability x ARR
-- (docs/churn-model.md).
{%- set as_of = as_of_date() %}
{%- set change_days = health_model()['health_score']['change_days'] %}

with scores as (

    select * from {{ ref('int_account_health_scores') }}

),

crm_accounts as (

    select * from {{ ref('stg_crm__accounts') }}

),

predictions as (

    select * from {{ ref('int_churn_predictions') }}

),

final as (

    select
        cast(s.account_id as string)                           as account_id,
        cast(s.as_of_date as date)                              as as_of_date,
        cast(s.as_of_date = {{ as_of }} as boolean)          as is_reporting_date,
        cast(crm_accounts.segment as string)               as segment,
        cast(s.mrr_usd as decimal(18, 4))                       as mrr_usd,
        cast(s.arr_usd as decimal(18, 4))                       as arr_usd,
        cast(s.health_score as integer)                         as health_score,
        cast(s.health_band as string)                          as health_band,
        cast(s.health_score - earlier.health_score as integer)
                                                            as health_change,
        cast(s.drivers as string)                              as drivers,
        cast(s.usage_points as integer)                         as usage_points,
        cast(s.support_points as integer)                       as support_points,
        cast(s.financial_points as integer)                     as financial_points,
        cast(s.engagement_points as integer)                    as engagement_points,
        cast(s.active_ratio_points as integer)                  as active_ratio_points,
        cast(s.weekly_trend_points as integer)                  as weekly_trend_points,
        cast(s.breadth_points as integer)                       as breadth_points,
        cast(s.ticket_points as integer)                        as ticket_points,
        cast(s.critical_ticket_points as integer)               as critical_ticket_points,
        cast(s.payment_points as integer)                       as payment_points,
        cast(s.seat_points as integer)                          as seat_points,
        cast(s.sponsor_points as integer)                       as sponsor_points,
        cast(s.qbr_points as integer)                           as qbr_points,
        cast(s.nps_points as integer)                           as nps_points,
        cast(s.training_points as integer)                      as training_points,
        cast(s.churn_risk as integer)                           as churn_risk,
        cast(s.churn_risk_band as string)                      as churn_risk_band,
        cast(s.usage_decline_points as integer)                 as usage_decline_points,
        cast(s.ticket_spike_points as integer)                  as ticket_spike_points,
        cast(s.low_nps_points as integer)                       as low_nps_points,
        cast(s.champion_left_points as integer)                 as champion_left_points,
        cast(s.payment_failure_points as integer)               as payment_failure_points,
        cast(s.renewal_risk_points as integer)                  as renewal_risk_points,
        cast(s.renewal_date as date)                            as renewal_date,
        cast(s.provisioned_users as bigint)                     as provisioned_users,
        cast(s.active_user_days_in_window as bigint)            as active_user_days_in_window,
        cast(s.active_ratio as decimal(18, 6))                  as active_ratio,
        cast(s.active_users_in_trend_window as bigint)          as active_users_in_trend_window,
        cast(s.active_users_in_previous_trend_window as bigint) as active_users_in_previous_trend_window,
        cast(s.weekly_trend as decimal(18, 6))                  as weekly_trend,
        cast(s.core_features_in_window as bigint)               as core_features_in_window,
        cast(s.tickets_in_window as bigint)                     as tickets_in_window,
        cast(s.open_critical_tickets as bigint)                 as open_critical_tickets,
        cast(s.failed_payments_in_window as bigint)             as failed_payments_in_window,
        cast(s.purchased_seats as bigint)                       as purchased_seats,
        cast(s.active_users_in_seat_window as bigint)           as active_users_in_seat_window,
        cast(s.seat_utilisation as decimal(18, 6))              as seat_utilisation,
        cast(s.has_executive_sponsor as boolean)                as has_executive_sponsor,
        cast(s.last_business_review_on as date)                 as last_business_review_date,
        cast(s.last_training_on as date)                        as last_training_date,
        cast(s.latest_nps as integer)                           as latest_nps,
        cast(s.latest_nps_on as date)                           as latest_nps_date,
        cast(s.events_in_window as bigint)                      as events_in_window,
        cast(s.events_in_previous_window as bigint)             as events_in_previous_window,
        cast(s.usage_change as decimal(18, 6))                  as usage_change,
        cast(s.spike_window_tickets as bigint)                  as spike_window_tickets,
        cast(s.baseline_tickets as bigint)                      as baseline_tickets,
        cast(s.champion_left_on as date)                        as champion_left_date,
        cast(s.active_users_in_previous_team_window as bigint)  as active_users_in_previous_team_window,
        cast(s.active_users_in_team_window as bigint)           as active_users_in_team_window,
        cast(s.health_model_version as string)                 as health_model_version,
        cast(s.health_model_name as string)                    as health_model_name,
        cast(predictions.churn_probability as double)           as churn_probability,
        cast(predictions.churn_model_version as string)        as churn_model_version,
        cast(
            round(predictions.churn_probability * cast(s.arr_usd as double), 4) as decimal(18, 4)
        )                                                       as expected_arr_lost_usd
    from scores as s
    left join scores as earlier
        on  earlier.account_id = s.account_id
        and earlier.as_of_date = s.as_of_date - {{ change_days }}
    left join crm_accounts
        on crm_accounts.account_id = s.account_id
    left join predictions
        on  predictions.account_id = s.account_id
        and predictions.as_of_date = s.as_of_date
    where s.is_reported

)

select * from final
