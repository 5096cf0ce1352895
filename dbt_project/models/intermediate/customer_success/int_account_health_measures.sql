-- The measures the health score and churn risk read, per scored account and date (the rows of
-- int_account_health_spine), each as of that date: looked up in int_account_signal_history with
-- ASOF joins (the latest row on or before the date, or before the date minus a window) instead of
-- scanning the daily facts once per date. "The N days to D" are the dates D-N+1 .. D; "the N days
-- before that" D-2N+1 .. D-N. Every window comes from var health_model.
--
-- Points are not computed here (int_account_health_scores does that), so a unit test can feed
-- the scoring hand-made measures.
--
-- Incremental (macros/health_incremental.sql): the pre-hook deletes the pairs
-- int_account_health_invalidation names and the dates no longer wanted (or whose is_reported
-- changed); the run computes the spine's pairs the table lacks. A pair's measures read the
-- history on or before its date only, so the table equals a full build.
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
{%- set cr = hm['churn_risk'] %}
{%- set ratio_w = cs_int(hs['usage']['active_ratio']['window_days']) %}
{%- set trend_w = cs_int(hs['usage']['weekly_trend']['window_days']) %}
{%- set breadth_w = cs_int(hs['usage']['breadth']['window_days']) %}
{%- set tickets_w = cs_int(hs['support']['tickets_window_days']) %}
{%- set pay_w = cs_int(hs['financial']['payments']['window_days']) %}
{%- set seats_w = cs_int(hs['financial']['seats']['window_days']) %}
{%- set br_w = cs_int(hs['engagement']['business_review']['window_days']) %}
{%- set training_w = cs_int(hs['engagement']['training']['window_days']) %}
{%- set nps_w = cs_int(hs['engagement']['nps']['window_days']) %}
{%- set decline_w = cs_int(cr['usage_decline']['window_days']) %}
{%- set spike_w = cs_int(cr['ticket_spike']['window_days']) %}
{%- set baseline_d = cs_int(cr['ticket_spike']['baseline_days']) %}
{%- set champion_w = cs_int(cr['champion_left']['window_days']) %}
{%- set team_w = cs_int(hm['lists']['expansion']['team_growth']['window_days']) %}
{%- set offsets = cs_distinct_days([ratio_w, trend_w, tickets_w, pay_w, decline_w, 2 * decline_w, spike_w, spike_w + baseline_d, team_w]) %}

with spine as (

    select * from {{ ref('int_account_health_spine') }} as spine
    {{ pairs_this_table_lacks('spine') }}

),

invalidation as (

    select * from {{ ref('int_account_health_invalidation') }}

),

history as (

    select * from {{ ref('int_account_signal_history') }}

),

at_date as (

    select
        spine.*,
        history.* exclude (account_id, built_from_loaded_at, health_model_version, health_config_hash, code_version)
    from spine
    asof left join history
        on  history.account_id = spine.account_id
        and spine.as_of_date >= history.changed_on

),

{%- for k in offsets %}

days_before_{{ k }} as (

    select
        spine.account_id,
        spine.as_of_date,
        history.* exclude (account_id, built_from_loaded_at, health_model_version, health_config_hash, code_version)
    from spine
    asof left join history
        on  history.account_id = spine.account_id
        and spine.as_of_date - {{ k }} >= history.changed_on

),
{%- endfor %}

final as (

    select
        d.account_id,
        d.as_of_date,
        d.is_reported,
        d.mrr_usd,
        d.arr_usd,
        d.purchased_seats,
        d.renewal_date,
        -- usage
        coalesce(d.provisioned_users, 0)                                          as provisioned_users,
        coalesce(d.cumulative_active_user_days, 0)
            - coalesce(b{{ ratio_w }}.cumulative_active_user_days, 0)               as active_user_days_in_window,
        coalesce(d.active_users_{{ trend_w }}d, 0)                                 as active_users_in_trend_window,
        coalesce(b{{ trend_w }}.active_users_{{ trend_w }}d, 0)                    as active_users_in_previous_trend_window,
        coalesce(d.core_features_{{ breadth_w }}d, 0)                              as core_features_in_window,
        -- support
        coalesce(d.cumulative_tickets, 0) - coalesce(b{{ tickets_w }}.cumulative_tickets, 0)
                                                                                  as tickets_in_window,
        coalesce(d.open_critical_tickets, 0)                                      as open_critical_tickets,
        -- financial
        coalesce(d.cumulative_failed_payments, 0)
            - coalesce(b{{ pay_w }}.cumulative_failed_payments, 0)                 as failed_payments_in_window,
        coalesce(d.active_users_{{ seats_w }}d, 0)                                 as active_users_in_seat_window,
        -- engagement
        coalesce(d.executive_sponsors, 0)                                         as executive_sponsors,
        case when d.last_business_review_on > d.as_of_date - {{ br_w }}
            then d.last_business_review_on end                                    as last_business_review_on,
        case when d.last_training_on > d.as_of_date - {{ training_w }}
            then d.last_training_on end                                           as last_training_on,
        case when d.latest_nps_on > d.as_of_date - {{ nps_w }}
            then d.latest_nps_score end                                           as latest_nps,
        case when d.latest_nps_on > d.as_of_date - {{ nps_w }}
            then d.latest_nps_on end                                              as latest_nps_on,
        -- churn risk
        coalesce(d.cumulative_events, 0) - coalesce(b{{ decline_w }}.cumulative_events, 0)
                                                                                  as events_in_window,
        coalesce(b{{ decline_w }}.cumulative_events, 0)
            - coalesce(b{{ 2 * decline_w }}.cumulative_events, 0)                  as events_in_previous_window,
        coalesce(d.cumulative_tickets, 0) - coalesce(b{{ spike_w }}.cumulative_tickets, 0)
                                                                                  as spike_window_tickets,
        coalesce(b{{ spike_w }}.cumulative_tickets, 0)
            - coalesce(b{{ spike_w + baseline_d }}.cumulative_tickets, 0)          as baseline_tickets,
        case when d.last_champion_left_on > d.as_of_date - {{ champion_w }}
            then d.last_champion_left_on end                                      as champion_left_on,
        -- expansion
        coalesce(b{{ team_w }}.active_users_{{ team_w }}d, 0)                      as active_users_in_previous_team_window,
        coalesce(d.active_users_{{ team_w }}d, 0)                                  as active_users_in_team_window,
        {{ health_bookkeeping_columns(health_inputs_loaded_at('invalidation')) }}
    from at_date as d
    {%- for k in offsets %}
    left join days_before_{{ k }} as b{{ k }}
        on  b{{ k }}.account_id = d.account_id
        and b{{ k }}.as_of_date = d.as_of_date
    {%- endfor %}

)

select * from final
