-- Fails (one row per broken check and account-date) unless every row of fct_account_health is
-- internally consistent with the configuration (var health_model):
--   component_sums: usage/support/financial/engagement points are the sums of their rules' points;
--   component_ranges: each group within 0..max_points (support: at most start_points, may be < 0);
--   score_clamped_sum: health_score = the four groups' sum clamped to 0..100;
--   band: health_band follows bands.green / bands.yellow;
--   churn_sum_and_band: churn_risk = min(max_points, sum of the signals), its band follows bands.
{%- set hm = health_model() %}
{%- set hs = hm['health_score'] %}
{%- set cr = hm['churn_risk'] %}

with health as (

    select * from {{ ref('fct_account_health') }}

),

checks as (

    select
        account_id,
        as_of_date,
        case
            when usage_points <> active_ratio_points + weekly_trend_points + breadth_points
              or support_points <> {{ hs['support']['start_points'] }} + ticket_points + critical_ticket_points
              or financial_points <> payment_points + seat_points
              or engagement_points <> sponsor_points + qbr_points + nps_points + training_points
                then 'component_sums'
        end as component_sums,
        case
            when usage_points not between 0 and {{ hs['usage']['max_points'] }}
              or support_points > {{ hs['support']['max_points'] }}
              or financial_points not between 0 and {{ hs['financial']['max_points'] }}
              or engagement_points not between 0 and {{ hs['engagement']['max_points'] }}
                then 'component_ranges'
        end as component_ranges,
        case
            when health_score <> greatest(0, least(100,
                usage_points + support_points + financial_points + engagement_points))
                then 'score_clamped_sum'
        end as score_clamped_sum,
        case
            when health_band <> case
                when health_score >= {{ hs['bands']['green'] }} then 'green'
                when health_score >= {{ hs['bands']['yellow'] }} then 'yellow'
                else 'red' end
                then 'band'
        end as band,
        case
            when churn_risk <> least({{ cr['max_points'] }},
                    usage_decline_points + ticket_spike_points + low_nps_points
                    + champion_left_points + payment_failure_points + renewal_risk_points)
              or churn_risk_band <> case
                when churn_risk <= {{ cr['bands']['low'] }} then 'low'
                when churn_risk <= {{ cr['bands']['medium'] }} then 'medium'
                else 'high' end
                then 'churn_sum_and_band'
        end as churn_sum_and_band
    from health

)

select account_id, as_of_date, check_name
from checks
unpivot (check_name for check_column in (
    component_sums, component_ranges, score_clamped_sum, band, churn_sum_and_band
))
