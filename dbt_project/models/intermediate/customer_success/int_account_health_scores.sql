-- Health score (0-100), band, every component's points, drivers and churn risk, per scored
-- account and date (reported and helper dates of int_account_health_spine), from the measures of
-- int_account_health_measures. The arithmetic is health-model.md's; every threshold, points value
-- and window comes from var health_model (threshold lists become CASE branches through the macros
-- step_whens / points_from_steps; ratios are compared by cross-multiplication, exactly).
--
-- Support: support_points = start_points + ticket_points + critical_ticket_points, where
-- ticket_points is the (negative) ticket-volume deduction and critical_ticket_points the
-- (negative) deduction per open critical ticket; it may go below 0.
-- health_score = usage + support + financial + engagement points, clamped to 0..100.
-- drivers: the components that lost the most points against their max_points (the `drivers`
-- largest losses, ties in the order usage, support, financial, engagement), comma separated; a
-- component that lost nothing is not a driver (null when none lost anything).
-- churn_risk = min(max_points, sum of the signals' points).
--
-- Incremental (macros/health_incremental.sql): the pre-hook deletes the pairs
-- int_account_health_invalidation names and the dates no longer wanted (or whose is_reported
-- changed); the run scores the measures' pairs the table lacks. A new health model or code
-- version rescores every pair (the invalidation names every account).
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='append_new_columns',
        pre_hook="{{ health_incremental_delete(ref('int_account_health_dates'), ref('int_account_health_invalidation')) }}",
    )
}}
{%- set hm = health_model() %}
{%- set hs = hm['health_score'] %}
{%- set u = hs['usage'] %}
{%- set s = hs['support'] %}
{%- set f = hs['financial'] %}
{%- set e = hs['engagement'] %}
{%- set cr = hm['churn_risk'] %}
{%- set components = ['usage', 'support', 'financial', 'engagement'] %}

with measures as (

    select * from {{ ref('int_account_health_measures') }} as measures
    {{ pairs_this_table_lacks('measures') }}

),

invalidation as (

    select * from {{ ref('int_account_health_invalidation') }}

),

points as (

    select
        *,
        -- usage: active ratio r = (daily active users summed over the window / window days)
        --        / provisioned users, compared as active_user_days > value x days x users
        case
            when provisioned_users <= 0 then {{ u['active_ratio']['otherwise'] }}
            {{- step_whens('active_user_days_in_window', u['active_ratio']['above'], '>',
                denominator=u['active_ratio']['window_days'] ~ ' * provisioned_users') }}
            else {{ u['active_ratio']['otherwise'] }}
        end                                                                    as active_ratio_points,
        -- usage: weekly trend t = (a - b) / b
        case
            when active_users_in_previous_trend_window > 0 then
                {{ points_from_steps('active_users_in_trend_window - active_users_in_previous_trend_window',
                    u['weekly_trend']['above'], u['weekly_trend']['otherwise'], '>',
                    denominator='active_users_in_previous_trend_window') | indent(16) }}
            when active_users_in_trend_window > 0 then {{ u['weekly_trend']['no_baseline_with_activity'] }}
            else {{ u['weekly_trend']['no_baseline_without_activity'] }}
        end                                                                    as weekly_trend_points,
        -- usage: breadth, distinct core features used in the window
        {{ points_from_steps('core_features_in_window', u['breadth']['at_least'], u['breadth']['otherwise'], '>=') }}
                                                                               as breadth_points,
        -- support: deductions from start_points
        {{ points_from_steps('tickets_in_window', s['ticket_volume_penalties'], 0, '>',
            value_key='above', sign=-1) }}                                     as ticket_points,
        -{{ s['open_critical_ticket_penalty'] }} * open_critical_tickets       as critical_ticket_points,
        -- financial: payments (f = 0, 1, ... -> points_by_failures[f], else otherwise)
        case failed_payments_in_window
            {%- for p in f['payments']['points_by_failures'] %}
            when {{ loop.index0 }} then {{ p }}
            {%- endfor %}
            else {{ f['payments']['otherwise'] }}
        end                                                                    as payment_points,
        -- financial: seats u = users active in the window / purchased seats
        case
            when coalesce(purchased_seats, 0) <= 0 then {{ f['seats']['no_seats'] }}
            {{- step_whens('active_users_in_seat_window', f['seats']['above'], '>', denominator='purchased_seats') }}
            {{- step_whens('active_users_in_seat_window', f['seats']['below'], '<', denominator='purchased_seats') }}
            else {{ f['seats']['otherwise'] }}
        end                                                                    as seat_points,
        -- engagement
        case when executive_sponsors > 0 then {{ e['executive_sponsor']['points'] }} else 0 end
                                                                               as sponsor_points,
        case when last_business_review_on is not null then {{ e['business_review']['points'] }} else 0 end
                                                                               as qbr_points,
        {{ points_from_steps('latest_nps', e['nps']['at_least'], e['nps']['otherwise'], '>=') }}
                                                                               as nps_points,
        case when last_training_on is not null then {{ e['training']['points'] }} else 0 end
                                                                               as training_points,
        -- churn risk signals that do not depend on the health score
        case
            when events_in_previous_window > 0 then
                {{ points_from_steps('events_in_window - events_in_previous_window', cr['usage_decline']['below'], 0, '<',
                    denominator='events_in_previous_window') | indent(16) }}
            else 0
        end                                                                    as usage_decline_points,
        -- n >= min_tickets and n > multiple x (baseline / (baseline_days / window_days))
        case
            when spike_window_tickets >= {{ cr['ticket_spike']['min_tickets'] }}
             and spike_window_tickets * {{ cr['ticket_spike']['baseline_days'] }}
                 > {{ cs_threshold(cr['ticket_spike']['multiple_of_baseline']) }}
                   * baseline_tickets * {{ cr['ticket_spike']['window_days'] }}
                then {{ cr['ticket_spike']['points'] }}
            else 0
        end                                                                    as ticket_spike_points,
        case
            when latest_nps < {{ cr['low_nps']['below'] }} then {{ cr['low_nps']['points'] }}
            when latest_nps = {{ cr['low_nps']['neutral_score'] }} then {{ cr['low_nps']['neutral_points'] }}
            else 0
        end                                                                    as low_nps_points,
        case when champion_left_on is not null then {{ cr['champion_left']['points'] }} else 0 end
                                                                               as champion_left_points,
        case when failed_payments_in_window >= {{ cr['payment_failures']['min_failures'] }}
            then {{ cr['payment_failures']['points'] }} else 0 end             as payment_failure_points
    from measures

),

components as (

    select
        *,
        active_ratio_points + weekly_trend_points + breadth_points             as usage_points,
        {{ s['start_points'] }} + ticket_points + critical_ticket_points       as support_points,
        payment_points + seat_points                                           as financial_points,
        sponsor_points + qbr_points + nps_points + training_points             as engagement_points
    from points

),

scored as (

    select
        *,
        greatest(0, least(100,
            usage_points + support_points + financial_points + engagement_points
        ))                                                                     as health_score,
        {%- for c in components %}
        {{ hs[c]['max_points'] }} - {{ c }}_points                             as {{ c }}_lost{{ ',' if not loop.last }}
        {%- endfor %}
    from components

),

ranked as (

    select
        *,
        {%- for c in components %}
        {%- set i = loop.index0 %}
        1
        {%- for o in components if o != c %}
            + case when {{ o }}_lost > {{ c }}_lost
                {%- if components.index(o) < i %} or {{ o }}_lost = {{ c }}_lost{% endif %}
                then 1 else 0 end
        {%- endfor %}                                                          as {{ c }}_rank,
        {%- endfor %}
        case
            when health_score >= {{ hs['bands']['green'] }} then 'green'
            when health_score >= {{ hs['bands']['yellow'] }} then 'yellow'
            else 'red'
        end                                                                    as health_band,
        case
            when renewal_date <= as_of_date + {{ cr['renewal_near_health_low']['within_days'] }}
             and health_score < {{ cr['renewal_near_health_low']['health_below'] }}
                then {{ cr['renewal_near_health_low']['points'] }}
            else 0
        end                                                                    as renewal_risk_points
    from scored

),

final as (

    select
        account_id,
        as_of_date,
        is_reported,
        mrr_usd,
        arr_usd,
        purchased_seats,
        renewal_date,
        cast(health_score as integer)                                          as health_score,
        health_band,
        nullif(concat_ws(', '
            {%- for k in range(1, cs_int(hs['drivers']) + 1) %},
            case
                {%- for c in components %}
                when {{ c }}_rank = {{ k }} and {{ c }}_lost > 0 then '{{ c }}'
                {%- endfor %}
            end
            {%- endfor %}
        ), '')                                                                 as drivers,
        cast(usage_points as integer)                                          as usage_points,
        cast(support_points as integer)                                        as support_points,
        cast(financial_points as integer)                                      as financial_points,
        cast(engagement_points as integer)                                     as engagement_points,
        cast(active_ratio_points as integer)                                   as active_ratio_points,
        cast(weekly_trend_points as integer)                                   as weekly_trend_points,
        cast(breadth_points as integer)                                        as breadth_points,
        cast(ticket_points as integer)                                         as ticket_points,
        cast(critical_ticket_points as integer)                                as critical_ticket_points,
        cast(payment_points as integer)                                        as payment_points,
        cast(seat_points as integer)                                           as seat_points,
        cast(sponsor_points as integer)                                        as sponsor_points,
        cast(qbr_points as integer)                                            as qbr_points,
        cast(nps_points as integer)                                            as nps_points,
        cast(training_points as integer)                                       as training_points,
        cast(least({{ cr['max_points'] }},
            usage_decline_points + ticket_spike_points + low_nps_points + champion_left_points
            + payment_failure_points + renewal_risk_points
        ) as integer)                                                          as churn_risk,
        case
            when least({{ cr['max_points'] }},
                usage_decline_points + ticket_spike_points + low_nps_points + champion_left_points
                + payment_failure_points + renewal_risk_points) <= {{ cr['bands']['low'] }} then 'low'
            when least({{ cr['max_points'] }},
                usage_decline_points + ticket_spike_points + low_nps_points + champion_left_points
                + payment_failure_points + renewal_risk_points) <= {{ cr['bands']['medium'] }} then 'medium'
            else 'high'
        end                                                                    as churn_risk_band,
        cast(usage_decline_points as integer)                                  as usage_decline_points,
        cast(ticket_spike_points as integer)                                   as ticket_spike_points,
        cast(low_nps_points as integer)                                        as low_nps_points,
        cast(champion_left_points as integer)                                  as champion_left_points,
        cast(payment_failure_points as integer)                                as payment_failure_points,
        cast(renewal_risk_points as integer)                                   as renewal_risk_points,
        -- measures
        provisioned_users,
        active_user_days_in_window,
        {{ decimal_ratio('active_user_days_in_window',
            u['active_ratio']['window_days'] ~ ' * provisioned_users') }}      as active_ratio,
        active_users_in_trend_window,
        active_users_in_previous_trend_window,
        {{ decimal_ratio('active_users_in_trend_window - active_users_in_previous_trend_window',
            'active_users_in_previous_trend_window') }}                                     as weekly_trend,
        core_features_in_window,
        tickets_in_window,
        open_critical_tickets,
        failed_payments_in_window,
        active_users_in_seat_window,
        {{ decimal_ratio('active_users_in_seat_window', 'purchased_seats') }}             as seat_utilisation,
        executive_sponsors > 0                                                 as has_executive_sponsor,
        last_business_review_on,
        last_training_on,
        latest_nps,
        latest_nps_on,
        events_in_window,
        events_in_previous_window,
        {{ decimal_ratio('events_in_window - events_in_previous_window', 'events_in_previous_window') }}
                                                                               as usage_change,
        spike_window_tickets,
        baseline_tickets,
        champion_left_on,
        active_users_in_previous_team_window,
        active_users_in_team_window,
        {{ health_model_version_columns() }},
        {{ health_bookkeeping_columns(health_inputs_loaded_at('invalidation'), with_version=false) }}
    from ranked

)

select * from final
