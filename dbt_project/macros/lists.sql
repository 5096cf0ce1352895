{#-
    The risk and expansion lists' reasons and signals, one row per reason (signal), written once:
    risk_list / expansion_list join them into their `;`-separated text columns (for CSV readers),
    risk_list_reasons / expansion_list_signals publish the rows themselves (docs/marts.md). The
    rules and their words are documented in the models' headers and docs/health-model.md.
-#}

{#- The fct_account_health rows at D with the risk list's rules (lists.risk) as flags:
    is_listed_band, is_high_churn_risk, is_renewal_at_risk. Uses the `health` CTE (rows at D). -#}
{% macro risk_list_flagged(health) -%}
    {%- if not execute %}{{ return('select * from ' ~ health) }}{% endif %}
    {%- set risk = health_model()['lists']['risk'] %}
    select
        *,
        health_band in {{ sql_in_list(risk['health_bands']) }}                      as is_listed_band,
        churn_risk >= {{ risk['min_churn_risk'] }}                                  as is_high_churn_risk,
        coalesce(
            renewal_date <= as_of_date + {{ risk['renewal_within_days'] }}
            and health_score < {{ risk['renewal_health_below'] }},
            false
        )                                                                           as is_renewal_at_risk
    from {{ health }}
{%- endmacro %}

{#- One row per reason of each account of `flagged` (risk_list_flagged): account_id,
    reason_code, reason (the words), reason_order (the order of the reasons in risk_list.reasons). -#}
{% macro risk_list_reason_rows(flagged) -%}
    {%- if not execute %}{{ return('select * from ' ~ flagged) }}{% endif %}
    {%- set hm = health_model() %}
    {%- set cr = hm['churn_risk'] %}
    {%- set reasons = [
        ('health_band', 'is_listed_band',
            "'health ' || health_score || ' (' || health_band || ')'"
            ~ " || coalesce(', most points lost in ' || drivers, '')"),
        ('renewal', 'is_renewal_at_risk',
            "'renewal on ' || strftime(renewal_date, '%Y-%m-%d') || ', health ' || health_score"),
        ('critical_tickets', 'open_critical_tickets > 0',
            "open_critical_tickets || ' critical ticket'"
            ~ " || case when open_critical_tickets = 1 then '' else 's' end || ' open'"),
        ('champion_left', 'champion_left_points > 0',
            "'champion left on ' || strftime(champion_left_date, '%Y-%m-%d')"),
        ('usage_decline', 'usage_decline_points > 0',
            "'usage down ' || cast(round(-100 * usage_change) as integer)"
            ~ " || '% vs previous " ~ cr['usage_decline']['window_days'] ~ " days'"),
        ('ticket_spike', 'ticket_spike_points > 0',
            "spike_window_tickets || ' tickets in " ~ cr['ticket_spike']['window_days'] ~ " days vs '"
            ~ " || cast(round(cast(baseline_tickets as decimal(18, 4)) * "
            ~ cr['ticket_spike']['window_days'] ~ " / " ~ cr['ticket_spike']['baseline_days']
            ~ ", 1) as decimal(18, 1)) || ' per " ~ cr['ticket_spike']['window_days'] ~ " days before'"),
        ('low_nps', 'low_nps_points > 0', "'NPS ' || latest_nps"),
        ('payment_failures', 'payment_failure_points > 0',
            "failed_payments_in_window || ' failed payment'"
            ~ " || case when failed_payments_in_window = 1 then '' else 's' end"
            ~ " || ' in " ~ hm['health_score']['financial']['payments']['window_days'] ~ " days'"),
    ] %}
    {%- for code, condition, words in reasons %}
    select
        account_id,
        '{{ code }}'                    as reason_code,
        {{ words }}                     as reason,
        {{ loop.index }}                as reason_order
    from {{ flagged }}
    where {{ condition }}
    {{ 'union all' if not loop.last }}
    {%- endfor %}
{%- endmacro %}

{#- The CTEs of the expansion list's signals (lists.expansion), ending with `signals`: the
    current_health rows at D with has_seat_limit, has_team_growth and has_sustained_health. -#}
{% macro expansion_list_signal_ctes() -%}
{%- set as_of = as_of_date() %}
{#- while dbt parses (no vars) only the refs matter -#}
{%- set ex = health_model()['lists']['expansion'] if execute else {
    'sustained_health': {'previous_mondays': 0, 'band': none},
    'seat_limit_utilisation': 0, 'team_growth': {'growth_above': 0}} %}
{%- set previous_mondays = cs_int(ex['sustained_health']['previous_mondays']) %}
health as (

    select * from {{ ref('fct_account_health') }}

),

ttv as (

    select * from {{ ref('fct_time_to_value') }}

),

crm_accounts as (

    select * from {{ ref('stg_crm__accounts') }}

),

current_health as (

    select * from health
    where as_of_date = {{ as_of }}

),

previous_mondays as (

    -- the Mondays strictly before D, latest first
    {%- for k in range(previous_mondays) %}
    select
        {{ as_of }} - cast((isodow({{ as_of }}) + 5) % 7 + 1 + {{ 7 * k }} as integer) as monday
    {{ 'union all' if not loop.last }}
    {%- endfor %}
    {%- if previous_mondays == 0 %}
    select cast(null as date) as monday where false
    {%- endif %}

),

sustained as (

    select health.account_id
    from health
    inner join previous_mondays
        on previous_mondays.monday = health.as_of_date
    where health.health_band = {{ cs_literal(ex['sustained_health']['band']) }}
    group by health.account_id
    having count(*) = {{ previous_mondays }}

),

signals as (

    select
        current_health.*,
        crm_accounts.account_name,
        crm_accounts.owner,
        current_health.purchased_seats > 0
            and current_health.active_users_in_seat_window
                >= {{ cs_threshold(ex['seat_limit_utilisation']) }} * current_health.purchased_seats
                                                                            as has_seat_limit,
        current_health.active_users_in_previous_team_window >= 1
            and current_health.active_users_in_team_window - current_health.active_users_in_previous_team_window
                > {{ cs_threshold(ex['team_growth']['growth_above']) }} * current_health.active_users_in_previous_team_window
                                                                            as has_team_growth,
        current_health.health_band = {{ cs_literal(ex['sustained_health']['band']) }}
            and {{ 'sustained.account_id is not null' if previous_mondays > 0 else 'true' }}
            and coalesce(ttv.has_reached_first_value, false)                as has_sustained_health
    from current_health
    left join sustained
        on sustained.account_id = current_health.account_id
    left join ttv
        on ttv.account_id = current_health.account_id
    left join crm_accounts
        on crm_accounts.account_id = current_health.account_id

)
{%- endmacro %}

{#- One row per signal of each account of `signals` (expansion_list_signal_ctes): account_id,
    signal_type, signal (the words), urgency of the signal and signal_order (high first). -#}
{% macro expansion_list_signal_rows(signals) -%}
    {%- if not execute %}{{ return('select * from ' ~ signals) }}{% endif %}
    {%- set hm = health_model() %}
    {%- set ex = hm['lists']['expansion'] %}
    {%- set seats_w = hm['health_score']['financial']['seats']['window_days'] %}
    {%- set team_w = ex['team_growth']['window_days'] %}
    {%- set previous_mondays = cs_int(ex['sustained_health']['previous_mondays']) %}
    {%- set signals_ = [
        ('seat_limit', 'has_seat_limit', 'high',
            "'seats ' || cast(round(100 * seat_utilisation) as integer) || '% used ('"
            ~ " || active_users_in_seat_window || ' users active in " ~ seats_w ~ " days, '"
            ~ " || purchased_seats || ' seats)'"),
        ('team_growth', 'has_team_growth', 'medium',
            "'active users up ' || cast("
            ~ div_round_half_up(
                '100 * (active_users_in_team_window - active_users_in_previous_team_window)',
                'active_users_in_previous_team_window')
            ~ " as integer) || '% on the previous " ~ team_w ~ " days (' || active_users_in_team_window"
            ~ " || ' vs ' || active_users_in_previous_team_window || ')'"),
        ('sustained_health', 'has_sustained_health', 'low',
            cs_literal(ex['sustained_health']['band']) ~ " || ' now and on the previous '"
            ~ " || '" ~ previous_mondays ~ " Mondays, first value reached'"),
    ] %}
    {%- for signal_type, condition, urgency, words in signals_ %}
    select
        account_id,
        '{{ signal_type }}'             as signal_type,
        {{ words }}                     as signal,
        '{{ urgency }}'                 as urgency,
        {{ loop.index }}                as signal_order
    from {{ signals }}
    where {{ condition }}
    {{ 'union all' if not loop.last }}
    {%- endfor %}
{%- endmacro %}
