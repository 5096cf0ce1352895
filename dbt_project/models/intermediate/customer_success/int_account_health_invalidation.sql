-- Which (account, date) pairs of the incremental health chain (int_account_signal_history,
-- int_account_health_spine, int_account_health_measures, int_account_health_scores,
-- int_account_churn_features) this run must recompute (docs/health-model.md "Incremental runs",
-- macros/health_incremental.sql). One row per account to recompute from recompute_from on (null:
-- from the beginning); a row with a null account_id: every account (from recompute_from; null:
-- a full recompute, `reason` says why). reaches_signal_history is false for a change the signal
-- history does not read (FX rates: only MRR, which the spine reads). No row: nothing changed.
--
-- A health value on date D depends only on input rows dated on or before D, so a change
-- invalidates its account from the earliest date it touches. Changes are the input rows loaded
-- after the chain's watermark (the smallest of its tables' largest built_from_loaded_at):
-- * daily facts (events per user and name, activity, user activity, feature usage) rebuilt with
--   newer events: from the earliest such activity_date of the account (the events per name
--   also for events that count neither as activity nor as a feature: the churn features read
--   every name);
-- * entity rows: for every key with a version loaded after the watermark, ALL versions of that
--   key (old and new, so a date moved later still invalidates the old one, and a row moved to
--   another account invalidates both), from the earliest of the dates the history reads
--   (tickets created/resolved, invoices issued/due/paid, users provisioned/deprovisioned,
--   contacts started/ended, activities, NPS responses, opportunities closed / contract dates);
--   CRM accounts and billing customers, subscriptions and subscription items (the MRR, seats
--   and renewals of the spine): their accounts from the beginning;
-- * FX rates: every account from the first day of the earliest month loaded (a month's rate
--   converts that month's MRR; later dates may read it through MRR windows), not the signal
--   history;
-- * plans: every account from the beginning.
-- Every account from the beginning also when a chain table is missing, lacks the bookkeeping
-- columns or was built under another health model configuration or code version
-- (health_chain_state). inputs_loaded_at (the same on every row) is the largest _loaded_at of
-- the inputs: the rebuilt rows' built_from_loaded_at.
-- Assumes _loaded_at grows from one load to the next (one writer), as the daily facts do.
{%- set state = health_chain_state() %}
{%- set full_reason = state[0] %}
{%- set watermark = state[1] %}
{#- (source, key, account_id SQL over v (a version) or none: through billing, date SQL or none) -#}
{%- set entities = [
    ('crm', 'support_tickets', 'ticket_id', 'v.account_id',
        'least(cast(v.created_at as date), cast(v.resolved_at as date))'),
    ('crm', 'contacts', 'contact_id', 'v.account_id',
        "least(coalesce(cast(v.started_at as date), cast('1900-01-01' as date)), cast(v.ended_at as date))"),
    ('crm', 'activities', 'activity_id', 'v.account_id', 'cast(v.occurred_at as date)'),
    ('crm', 'nps_responses', 'response_id', 'v.account_id', 'cast(v.responded_at as date)'),
    ('crm', 'opportunities', 'opportunity_id', 'v.account_id',
        'least(cast(v.close_date as date), cast(v.contract_start_date as date), cast(v.contract_end_date as date))'),
    ('crm', 'accounts', 'account_id', 'v.account_id', none),
    ('product', 'users', 'user_id', 'v.account_id',
        'least(cast(v.provisioned_at as date), cast(v.deprovisioned_at as date))'),
    ('billing', 'customers', 'billing_customer_id', 'v.account_id', none),
] %}
{%- set billing_entities = [
    ('invoices', 'invoice_id', 'billing_customer_id',
        'least(cast(v.issued_at as date), cast(v.due_at as date), cast(v.paid_at as date))'),
    ('subscriptions', 'subscription_id', 'billing_customer_id', none),
] %}
{#- tables whose change touches every account: (source, table, first date SQL over v or none:
    from the beginning, whether the signal history reads the table) -#}
{%- set whole_tables = [
    ('billing', 'fx_rates', month_start('cast(v.month as date)'), false),
    ('billing', 'plans', none, true),
] %}
{%- set facts = ['int_user_daily_events', 'int_account_daily_activity', 'int_user_daily_activity', 'int_account_daily_feature_usage'] %}

with inputs_loaded_at as (

    select greatest(
        {%- for fact in facts %}
        (select max(max_loaded_at) from {{ ref(fact) }}),
        {%- endfor %}
        {%- for system, name, key, account, day in entities %}
        (select max(_loaded_at) from {{ source(system, name) }}),
        {%- endfor %}
        {%- for name, key, customer, day in billing_entities %}
        (select max(_loaded_at) from {{ source('billing', name) }}),
        {%- endfor %}
        (select max(_loaded_at) from {{ source('billing', 'subscription_items') }}),
        {%- for system, name, day, reaches in whole_tables %}
        (select max(_loaded_at) from {{ source(system, name) }}){{ ',' if not loop.last }}
        {%- endfor %}
    ) as inputs_loaded_at

),

{%- if full_reason is not none %}

invalidated as (

    select
        cast(null as string) as account_id,
        cast(null as date)    as recompute_from,
        {{ cs_literal('every account: ' ~ full_reason) }} as reason,
        true                  as reaches_signal_history

),

{%- else %}
{%- set after = "_loaded_at > timestamp '" ~ watermark ~ "'" %}

-- every version of the billing customers, for the account of a billing row's every version
customer_accounts as (

    select distinct billing_customer_id, account_id
    from {{ source('billing', 'customers') }}

),

changes as (

    {%- for fact in facts %}
    select account_id, min(activity_date) as recompute_from, '{{ fact }}' as reason, true as reaches_signal_history
    from {{ ref(fact) }}
    where max_loaded_at > timestamp '{{ watermark }}'
    group by account_id

    union all
    {%- endfor %}

    {%- for system, name, key, account, day in entities %}
    select {{ account }} as account_id, {{ day if day else 'cast(null as date)' }} as recompute_from, '{{ name }}', true
    from {{ source(system, name) }} as v
    where v.{{ key }} in (select {{ key }} from {{ source(system, name) }} where {{ after }})

    union all
    {%- endfor %}

    {%- for name, key, customer, day in billing_entities %}
    select c.account_id, {{ day if day else 'cast(null as date)' }}, '{{ name }}', true
    from {{ source('billing', name) }} as v
    inner join customer_accounts as c
        on c.billing_customer_id = v.{{ customer }}
    where v.{{ key }} in (select {{ key }} from {{ source('billing', name) }} where {{ after }})

    union all
    {%- endfor %}

    select c.account_id, cast(null as date), 'subscription_items', true
    from {{ source('billing', 'subscription_items') }} as v
    inner join (select distinct subscription_id, billing_customer_id from {{ source('billing', 'subscriptions') }}) as s
        on s.subscription_id = v.subscription_id
    inner join customer_accounts as c
        on c.billing_customer_id = s.billing_customer_id
    where v.item_id in (select item_id from {{ source('billing', 'subscription_items') }} where {{ after }})

    {%- for system, name, day, reaches in whole_tables %}

    union all

    select cast(null as string), {{ 'min(' ~ day ~ ')' if day else 'cast(null as date)' }}, '{{ name }}', {{ reaches }}
    from {{ source(system, name) }} as v
    where v.{{ after }}
    having count(*) > 0
    {%- endfor %}

),

invalidated as (

    -- every account: one row per reaches_signal_history, from the earliest date (null wins)
    select
        cast(null as string) as account_id,
        case when bool_or(recompute_from is null) then null else min(recompute_from) end as recompute_from,
        'every account'
            || case when bool_or(recompute_from is null) then '' else ' from ' || cast(min(recompute_from) as string) end
            || ': ' || string_agg(distinct reason, ', ' order by reason) as reason,
        reaches_signal_history
    from changes
    where account_id is null
    group by reaches_signal_history

    union all

    -- per account, unless every account is recomputed from the beginning, the signal history too
    select
        account_id,
        -- null (from the beginning) wins over any date
        case when bool_or(recompute_from is null) then null else min(recompute_from) end,
        string_agg(distinct reason, ', ' order by reason),
        true
    from changes
    where account_id is not null
      and not exists (
            select 1 from changes as c
            where c.account_id is null and c.recompute_from is null and c.reaches_signal_history
      )
    group by account_id

),

{%- endif %}

final as (

    select
        cast(invalidated.account_id as string)            as account_id,
        cast(invalidated.recompute_from as date)           as recompute_from,
        cast(invalidated.reason as string)                as reason,
        cast(invalidated.reaches_signal_history as boolean) as reaches_signal_history,
        cast(inputs_loaded_at.inputs_loaded_at as timestamp) as inputs_loaded_at
    from invalidated
    cross join inputs_loaded_at

)

select * from final
