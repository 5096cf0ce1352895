-- What the learned churn model (metrics/churn_model.py, docs/churn-model.md) reads: one row per
-- reported account and date of the health history (int_account_health_spine, is_reported) and
-- feature, each value computed as of that date (rows dated on or before it), in long form so the
-- set of features can grow without a schema change.
--
-- Features:
-- * the health model's own measures and points, as int_account_health_scores computes them for
--   the date (health_score, churn_risk, every points column, active ratio, trend, breadth,
--   tickets, payments, seats, NPS, sponsor, usage change, ...); booleans as 0/1, dates as days;
-- * activity from int_account_daily_activity (events that count as activity): activity events,
--   active days and active user-days in the 30 days to the date (D-29 .. D), days since the last
--   active day (never active: days since the account first paid), tenure (days since the first
--   day with a paid item in force), MRR;
-- * usage per event name: `event_30d:<name>`, events of that name in the 30 days to the date,
--   for every name seen up to as_of (a ceiling of max_event_names, by frequency then name, that
--   only a product with more names than that reaches), WHETHER OR NOT the health model's feature
--   map knows them: a deployment's map may not know its product's events, so the model must not
--   depend on it. The fit picks its own names among them (by training frequency); a name it uses
--   that is absent here scores as 0 events (its fill_value is 0), never as a median.
-- Every (account, date) has every feature; value null = unknown (no NPS answer, no renewal date,
-- a ratio without a denominator), which the fit and int_churn_predictions replace by the
-- feature's fill_value. is_count: a count or amount >= 0, which the model takes as log1p.
--
-- The 30-day windows are fixed, independent of the health-model configuration, as the
-- backtest's baseline (activity_events_30d is exactly its score). Does not read
-- marts.fct_account_health: that mart reads the predictions made from these features.
--
-- Incremental (macros/churn_model.sql): a value on date D reads only rows dated on or before D
-- (tenure counts from the first paid day, which is on or before any scored date), so the table
-- follows the incremental health chain: the pre-hook deletes the pairs
-- int_account_health_invalidation names and the dates no longer reported, or every row when
-- the set of event names changed; the run computes the reported pairs the table lacks, reading
-- the facts of those accounts from 30 days before the earliest of them.
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='append_new_columns',
        pre_hook="{{ churn_features_delete(ref('int_account_health_dates'), ref('int_account_health_invalidation'), churn_event_names_sql(ref('int_user_daily_events'), churn_max_event_names()), churn_event_prefix()) }}",
    )
}}
{%- set as_of = as_of_date() %}
{%- set window_days = churn_window_days() %}
{%- set counts = [
    'provisioned_users', 'active_user_days_in_window', 'active_users_in_trend_window',
    'active_users_in_previous_trend_window', 'core_features_in_window', 'tickets_in_window',
    'open_critical_tickets', 'failed_payments_in_window', 'purchased_seats',
    'active_users_in_seat_window', 'events_in_window', 'events_in_previous_window',
    'spike_window_tickets', 'baseline_tickets', 'mrr_usd',
    'activity_events_30d', 'active_days_30d', 'active_user_days_30d',
    'days_since_last_activity', 'tenure_days',
] %}
{%- set values = [
    'health_score', 'churn_risk',
    'usage_points', 'support_points', 'financial_points', 'engagement_points',
    'active_ratio_points', 'weekly_trend_points', 'breadth_points', 'ticket_points',
    'critical_ticket_points', 'payment_points', 'seat_points', 'sponsor_points', 'qbr_points',
    'nps_points', 'training_points', 'usage_decline_points', 'ticket_spike_points',
    'low_nps_points', 'champion_left_points', 'payment_failure_points', 'renewal_risk_points',
    'active_ratio', 'weekly_trend', 'seat_utilisation', 'usage_change', 'latest_nps',
    'has_executive_sponsor', 'had_business_review', 'had_training', 'champion_left',
    'days_to_renewal',
] %}

with scores as (

    select * from {{ ref('int_account_health_scores') }} as scores
    where is_reported
    {%- if is_incremental() %}
      and not exists (
        select 1 from {{ this }} as t
        where t.feature = 'health_score'
          and t.account_id = scores.account_id
          and t.as_of_date = scores.as_of_date
      )
    {%- endif %}

),

invalidation as (

    select * from {{ ref('int_account_health_invalidation') }}

),

{#- the facts of the accounts the pairs to compute belong to (every row on a full build), and
    for the 30-day windows the days from 30 days before each account's earliest date (the
    earliest over all accounts, then each account's own) #}
{%- set accounts_needed %}
    {%- if is_incremental() %}
      and account_id in (select account_id from scores)
    {%- endif %}
{%- endset %}
{%- set window_needed %}
    {%- if is_incremental() %}
      and activity_date > (select min(as_of_date) from scores) - {{ window_days }}
      and exists (
        select 1 from first_dates
        where first_dates.account_id = f.account_id
          and f.activity_date > first_dates.first_on - {{ window_days }}
      )
    {%- endif %}
{%- endset %}

-- the earliest date to compute per account
first_dates as (

    select account_id, min(as_of_date) as first_on
    from scores
    group by account_id

),

daily_activity as (

    select * from {{ ref('int_account_daily_activity') }}
    where activity_date <= {{ as_of }}
    {{- accounts_needed }}

),

account_name_days as (

    select
        account_id,
        activity_date,
        event_name,
        sum(events) as events
    from {{ ref('int_user_daily_events') }} as f
    where activity_date <= {{ as_of }}
    {{- window_needed }}
    group by account_id, activity_date, event_name

),

paid_items as (

    select * from {{ ref('int_subscription_items_in_force') }}
    where amount_per_interval > 0

),

event_names as (

    {{ churn_event_names_sql(ref('int_user_daily_events'), churn_max_event_names()) }}

),

activity_30d as (

    select
        scores.account_id,
        scores.as_of_date,
        sum(daily_activity.events)       as activity_events_30d,
        count(daily_activity.activity_date) as active_days_30d,
        sum(daily_activity.active_users) as active_user_days_30d
    from scores
    inner join daily_activity
        on  daily_activity.account_id = scores.account_id
        and daily_activity.activity_date > scores.as_of_date - {{ window_days }}
        and daily_activity.activity_date <= scores.as_of_date
    group by scores.account_id, scores.as_of_date

),

last_activity as (

    select
        scores.account_id,
        scores.as_of_date,
        daily_activity.activity_date as last_active_on
    from scores
    asof left join daily_activity
        on  daily_activity.account_id = scores.account_id
        and scores.as_of_date >= daily_activity.activity_date

),

first_paid as (

    select
        account_id,
        min(in_force_from) as first_paid_on
    from paid_items
    group by account_id

),

wide as (

    select
        scores.account_id,
        scores.as_of_date,
        {%- for name in values %}
        {%- if name == 'has_executive_sponsor' %}
        cast(cast(scores.has_executive_sponsor as integer) as double)             as has_executive_sponsor,
        {%- elif name == 'had_business_review' %}
        cast(scores.last_business_review_on is not null as integer) * 1.0        as had_business_review,
        {%- elif name == 'had_training' %}
        cast(scores.last_training_on is not null as integer) * 1.0                as had_training,
        {%- elif name == 'champion_left' %}
        cast(scores.champion_left_on is not null as integer) * 1.0                as champion_left,
        {%- elif name == 'days_to_renewal' %}
        cast(datediff('day', scores.as_of_date, scores.renewal_date) as double)   as days_to_renewal,
        {%- else %}
        cast(scores.{{ name }} as double)                                         as {{ name }},
        {%- endif %}
        {%- endfor %}
        {%- for name in counts if name not in ['activity_events_30d', 'active_days_30d', 'active_user_days_30d', 'days_since_last_activity', 'tenure_days'] %}
        cast(scores.{{ name }} as double)                                         as {{ name }},
        {%- endfor %}
        cast(coalesce(activity_30d.activity_events_30d, 0) as double)             as activity_events_30d,
        cast(coalesce(activity_30d.active_days_30d, 0) as double)                 as active_days_30d,
        cast(coalesce(activity_30d.active_user_days_30d, 0) as double)            as active_user_days_30d,
        cast(datediff(
            'day',
            coalesce(last_activity.last_active_on, first_paid.first_paid_on),
            scores.as_of_date
        ) as double)                                                              as days_since_last_activity,
        cast(datediff('day', first_paid.first_paid_on, scores.as_of_date) as double)
                                                                                  as tenure_days
    from scores
    left join activity_30d
        on  activity_30d.account_id = scores.account_id
        and activity_30d.as_of_date = scores.as_of_date
    left join last_activity
        on  last_activity.account_id = scores.account_id
        and last_activity.as_of_date = scores.as_of_date
    left join first_paid
        on first_paid.account_id = scores.account_id

),

measures as (

    select account_id, as_of_date, feature, value
    from wide
    unpivot include nulls (
        value for feature in (
            {%- for name in values + counts %}
            {{ name }}{{ ',' if not loop.last }}
            {%- endfor %}
        )
    )

),

events_in_window as (

    select
        scores.account_id,
        scores.as_of_date,
        account_name_days.event_name,
        sum(account_name_days.events) as events
    from scores
    inner join account_name_days
        on  account_name_days.account_id = scores.account_id
        and account_name_days.activity_date > scores.as_of_date - {{ window_days }}
        and account_name_days.activity_date <= scores.as_of_date
    inner join event_names
        on event_names.event_name = account_name_days.event_name
    group by scores.account_id, scores.as_of_date, account_name_days.event_name

),

event_features as (

    select
        scores.account_id,
        scores.as_of_date,
        {{ cs_literal(churn_event_prefix()) }} || event_names.event_name as feature,
        cast(coalesce(events_in_window.events, 0) as double) as value,
        true                                                  as is_count
    from scores
    cross join event_names
    left join events_in_window
        on  events_in_window.account_id = scores.account_id
        and events_in_window.as_of_date = scores.as_of_date
        and events_in_window.event_name = event_names.event_name

),

features as (

    select
        cast(account_id as string)                          as account_id,
        cast(as_of_date as date)                             as as_of_date,
        cast(feature as string)                             as feature,
        cast(value as double)                                as value,
        cast(feature in {{ sql_in_list(counts) }} as boolean) as is_count
    from measures

    union all

    select
        cast(account_id as string),
        cast(as_of_date as date),
        cast(feature as string),
        cast(value as double),
        cast(is_count as boolean)
    from event_features

),

final as (

    select
        features.*,
        -- the incremental health chain's bookkeeping (macros/health_incremental.sql)
        true as is_reported,
        {{ health_bookkeeping_columns(health_inputs_loaded_at('invalidation'), with_version=false) }}
    from features

)

select * from final
