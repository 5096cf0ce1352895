-- Every input of the health score and churn risk as a step function of the date, per account:
-- one row per account and date on which any of them changes (changed_on), holding each
-- measure's value from the end of that day until the next row (valid_until, exclusive). The
-- value of a measure as of day D is the row with the latest changed_on <= D (an ASOF join; no row:
-- nothing happened yet, 0 / null). Sums over "the N days to D" are differences of cumulative
-- columns: cumulative(D) - cumulative(D - N).
--
-- Built from the daily facts and the CRM, billing and product entity rows, each row's state from
-- its own dates (never from status columns): a value on day D only depends on rows dated on or
-- before D, so adding rows dated after D never changes it. This model does not depend on as_of.
--
-- Columns (windows in days come from var health_model, see active_user_windows()):
--   cumulative_events, cumulative_active_user_days: running sums of the account's daily events
--     and daily active users (int_account_daily_activity).
--   active_users_<n>d: distinct users with an event in the n days to the date;
--   core_features_<n>d: distinct core features used in the n days to the date. Both from entry
--     (+1) and exit (-1) days of each user / feature (macro window_entry_exit_deltas).
--   cumulative_tickets: tickets created so far (created_at date).
--   open_critical_tickets: critical tickets created on or before the date and not resolved on or
--     before it (resolved_at null or its date later).
--   cumulative_failed_payments: invoices, by due_at date, with status not void or draft and
--     paid_at null or its date after due_at's date.
--   provisioned_users: users provisioned on or before the date and not deprovisioned on or before it.
--   executive_sponsors: contacts with the sponsor role (engagement.executive_sponsor.role) whose
--     started_at is null or on/before the date and ended_at null or after it.
--   last_champion_left_on: the latest ended_at (on or before the date) of a contact with the
--     champion role (churn_risk.champion_left.role).
--   last_business_review_on, last_training_on: the latest attended activity of the types of
--     engagement.business_review / engagement.training.
--   latest_nps_on, latest_nps_score: the latest NPS response (by responded_at; a tie at the same
--     time takes the lower score) and its date.
--
-- Incremental (docs/health-model.md "Incremental runs"): for each account
-- int_account_health_invalidation names with a first date C, the pre-hook deletes its rows from C
-- on, and the run recomputes them from the account's inputs dated from C on (the windowed
-- counts from the activity days from C minus the longest window: a +1/-1 dated C or later only
-- depends on those), seeded with the account's last kept row before C (its running sums, latest
-- dates and NPS start the new rows' running values); a post-hook sets that kept row's
-- valid_until. Every account (another configuration or code version, a table missing): a full
-- build. The result is the table a full build gives. The windowed columns follow the health
-- model: a new model drops the old windows' columns (sync_all_columns).
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='sync_all_columns',
        pre_hook="{{ signal_history_delete(ref('int_account_health_invalidation')) }}",
        post_hook="{{ signal_history_valid_until(ref('int_account_health_invalidation')) }}",
    )
}}
{%- set hm = health_model() %}
{%- set eng = hm['health_score']['engagement'] %}
{%- set user_windows = active_user_windows() %}
{%- set feature_windows = core_feature_windows() %}
{%- set delta_measures = ['events', 'active_user_days', 'tickets', 'open_critical_tickets', 'failed_payments', 'provisioned_users', 'executive_sponsors'] %}
{%- for n in user_windows %}{% do delta_measures.append('active_users_' ~ n ~ 'd') %}{% endfor %}
{%- for n in feature_windows %}{% do delta_measures.append('core_features_' ~ n ~ 'd') %}{% endfor %}
{%- set mark_measures = ['champion_left', 'business_review', 'training'] %}
{%- set cumulative = {'events': 'cumulative_events', 'active_user_days': 'cumulative_active_user_days', 'tickets': 'cumulative_tickets', 'failed_payments': 'cumulative_failed_payments'} %}
{%- set mark_columns = {'champion_left': 'last_champion_left_on', 'business_review': 'last_business_review_on', 'training': 'last_training_on'} %}
{#- incremental: only the invalidated accounts, from their first date (none: a full build) -#}
{%- set partial = is_incremental() and not signal_history_every_account(ref('int_account_health_invalidation')) %}
{%- set longest_window = ([0] + user_windows + feature_windows) | max %}

with invalidation as (

    select * from {{ ref('int_account_health_invalidation') }}

),

{%- if partial %}

-- the accounts recomputed and the first date of each (from the beginning: 1900-01-01)
cuts as (

    select account_id, coalesce(recompute_from, cast('1900-01-01' as date)) as cut_on
    from invalidation
    where account_id is not null and reaches_signal_history

),
{%- endif %}

account_days as (

    select * from {{ ref('int_account_daily_activity') }} as f
    {%- if partial %}
    where exists (select 1 from cuts where cuts.account_id = f.account_id and f.activity_date >= cuts.cut_on)
    {%- endif %}

),

user_days as (

    select * from {{ ref('int_user_daily_activity') }} as f
    {%- if partial %}
    where exists (
        select 1 from cuts
        where cuts.account_id = f.account_id and f.activity_date >= cuts.cut_on - {{ longest_window }}
    )
    {%- endif %}

),

feature_days as (

    select * from {{ ref('int_account_daily_feature_usage') }} as f
    {%- if partial %}
    where exists (
        select 1 from cuts
        where cuts.account_id = f.account_id and f.activity_date >= cuts.cut_on - {{ longest_window }}
    )
    {%- endif %}

),

tickets as (

    select * from {{ ref('stg_crm__support_tickets') }}

),

invoices as (

    select * from {{ ref('stg_billing__invoices') }}

),

customer_accounts as (

    select * from {{ ref('int_billing_customer_accounts') }}

),

users as (

    select * from {{ ref('stg_product__users') }}

),

contacts as (

    select * from {{ ref('stg_crm__contacts') }}

),

activities as (

    select * from {{ ref('stg_crm__activities') }}

),

nps_responses as (

    select * from {{ ref('stg_crm__nps_responses') }}

),

user_active_days as (

    select
        account_id,
        user_id,
        activity_date,
        lag(activity_date) over by_user  as previous_on,
        lead(activity_date) over by_user as next_on
    from user_days
    window by_user as (partition by account_id, user_id order by activity_date)

),

core_feature_days as (

    select
        account_id,
        feature,
        activity_date,
        lag(activity_date) over by_feature  as previous_on,
        lead(activity_date) over by_feature as next_on
    from feature_days
    where is_core
    window by_feature as (partition by account_id, feature order by activity_date)

),

deltas as (

    select account_id, activity_date as changed_on, 'events' as measure, events as delta
    from account_days

    union all

    select account_id, activity_date, 'active_user_days', active_users
    from account_days

    {%- for n in user_windows %}

    union all

    select account_id, changed_on, 'active_users_{{ n }}d', delta
    from ({{ window_entry_exit_deltas('user_active_days', ['account_id'], 'activity_date', n, 'delta') }})
    {%- endfor %}

    {%- for n in feature_windows %}

    union all

    select account_id, changed_on, 'core_features_{{ n }}d', delta
    from ({{ window_entry_exit_deltas('core_feature_days', ['account_id'], 'activity_date', n, 'delta') }})
    {%- endfor %}

    union all

    select account_id, cast(created_at as date), 'tickets', 1
    from tickets
    where created_at is not null

    union all

    select account_id, cast(created_at as date), 'open_critical_tickets', 1
    from tickets
    where severity = 'critical' and created_at is not null

    union all

    -- (never before its creation day, should a row say so)
    select
        account_id,
        greatest(cast(resolved_at as date), cast(created_at as date)),
        'open_critical_tickets',
        -1
    from tickets
    where severity = 'critical' and created_at is not null and resolved_at is not null

    union all

    select customer_accounts.account_id, cast(invoices.due_at as date), 'failed_payments', 1
    from invoices
    inner join customer_accounts
        on customer_accounts.billing_customer_id = invoices.billing_customer_id
    where invoices.due_at is not null
      and invoices.status not in ('void', 'draft')
      and (invoices.paid_at is null or cast(invoices.paid_at as date) > cast(invoices.due_at as date))

    union all

    select account_id, cast(provisioned_at as date), 'provisioned_users', 1
    from users
    where provisioned_at is not null

    union all

    select account_id, cast(deprovisioned_at as date), 'provisioned_users', -1
    from users
    where provisioned_at is not null and deprovisioned_at is not null

    union all

    -- a sponsor without started_at counts from the beginning of time
    select account_id, coalesce(started_at, cast('1900-01-01' as date)), 'executive_sponsors', 1
    from contacts
    where role = {{ cs_literal(eng['executive_sponsor']['role']) }}

    union all

    select account_id, ended_at, 'executive_sponsors', -1
    from contacts
    where role = {{ cs_literal(eng['executive_sponsor']['role']) }} and ended_at is not null

),

marks as (

    select account_id, ended_at as changed_on, 'champion_left' as measure
    from contacts
    where role = {{ cs_literal(hm['churn_risk']['champion_left']['role']) }} and ended_at is not null

    union all

    select account_id, cast(occurred_at as date), 'business_review'
    from activities
    where attended and activity_type in {{ sql_in_list(eng['business_review']['activity_types']) }}

    union all

    select account_id, cast(occurred_at as date), 'training'
    from activities
    where attended and activity_type in {{ sql_in_list(eng['training']['activity_types']) }}

),

nps_days as (

    -- the latest response of each day (a tie at the same time: the lower score)
    select
        account_id,
        cast(responded_at as date) as changed_on,
        score
    from nps_responses
    where responded_at is not null and score is not null
    qualify row_number() over (
        partition by account_id, cast(responded_at as date)
        order by responded_at desc, score asc
    ) = 1

),

change_days as (

    select
        account_id,
        changed_on,
        {%- for m in delta_measures %}
        coalesce(sum(delta) filter (where measure = '{{ m }}'), 0) as {{ m }}_change,
        {%- endfor %}
        {%- for m in mark_measures %}
        max(changed_on) filter (where measure = '{{ m }}')          as {{ m }}_on,
        {%- endfor %}
        max(nps_score)                                              as nps_score
    from (
        select account_id, changed_on, measure, delta, cast(null as bigint) as nps_score
        from deltas
        union all
        select account_id, changed_on, measure, 0, null
        from marks
        union all
        select account_id, changed_on, 'nps', 0, score
        from nps_days
    )
    where account_id is not null and changed_on is not null
    group by account_id, changed_on

),

changes as (

    select
        change_days.*,
        case when nps_score is not null then changed_on end as nps_on,
        false                                               as is_seed
    from change_days
    {%- if partial %}
    inner join cuts
        on  cuts.account_id = change_days.account_id
        and change_days.changed_on >= cuts.cut_on
    {%- endif %}
    {%- if partial %}

    union all

    -- the last kept row of each recomputed account: its values start the running ones
    select
        kept.account_id,
        kept.changed_on,
        {%- for m in delta_measures %}
        kept.{{ cumulative.get(m, m) }} as {{ m }}_change,
        {%- endfor %}
        {%- for m in mark_measures %}
        kept.{{ mark_columns[m] }}      as {{ m }}_on,
        {%- endfor %}
        kept.latest_nps_score            as nps_score,
        kept.latest_nps_on               as nps_on,
        true                             as is_seed
    from {{ this }} as kept
    inner join cuts
        on  cuts.account_id = kept.account_id
        and kept.changed_on < cuts.cut_on
    qualify row_number() over (partition by kept.account_id order by kept.changed_on desc) = 1
    {%- endif %}

),

final as (

    select
        cast(account_id as string)                                           as account_id,
        cast(changed_on as date)                                              as changed_on,
        cast(lead(changed_on) over running as date)                           as valid_until,
        {%- for m in delta_measures %}
        cast(sum({{ m }}_change) over running as bigint)                      as {{ cumulative.get(m, m) }},
        {%- endfor %}
        cast(max(champion_left_on) over running as date)                      as last_champion_left_on,
        cast(max(business_review_on) over running as date)                   as last_business_review_on,
        cast(max(training_on) over running as date)                           as last_training_on,
        cast(max(nps_on) over running as date)                                as latest_nps_on,
        cast(last_value(nps_score ignore nulls) over running as bigint)       as latest_nps_score,
        is_seed
    from changes
    window running as (
        partition by account_id
        order by changed_on
        rows between unbounded preceding and current row
    )

)

select
    * exclude (is_seed),
    {{ health_bookkeeping_columns(health_inputs_loaded_at('invalidation')) }}
from final
where not is_seed
