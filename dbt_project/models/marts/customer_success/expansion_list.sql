-- The expansion list as of the reporting date D (var as_of): accounts scored at D with at least
-- one signal (lists.expansion):
--   seat_limit (urgency high): u = users active in the financial.seats window / purchased seats
--     >= seat_limit_utilisation (default 0.85); needs purchased seats;
--   team_growth (medium): users active in the team_growth window to D exceed those of the window
--     before by more than growth_above (default 30%), with at least one user before;
--   sustained_health (low): in the sustained_health band (green) at D and at each of the
--     previous_mondays (3) Mondays before D, and first value reached (fct_time_to_value).
-- urgency: the highest of its signals. estimated_opportunity_usd: with seats,
-- max(1, ceil(seat_opportunity_share x seats)) x ARR per seat (ARR / seats), rounded half away
-- from zero to 4 decimals; without seats, seat_opportunity_share x ARR. list_rank: urgency (high
-- first), then estimated opportunity (largest first), then account_id. Owner is the CSM handle;
-- no contact names or e-mails.
{%- set as_of = as_of_date() %}
{%- set hm = health_model() %}
{%- set ex = hm['lists']['expansion'] %}
{%- set seats_w = hm['health_score']['financial']['seats']['window_days'] %}
{%- set team_w = ex['team_growth']['window_days'] %}
{%- set previous_mondays = cs_int(ex['sustained_health']['previous_mondays']) %}

with health as (

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
            and coalesce(ttv.reached, false)                                as has_sustained_health
    from current_health
    left join sustained
        on sustained.account_id = current_health.account_id
    left join ttv
        on ttv.account_id = current_health.account_id
    left join crm_accounts
        on crm_accounts.account_id = current_health.account_id

),

described as (

    select
        *,
        concat_ws('; ',
            case when has_seat_limit then
                'seats ' || cast(round(100 * seat_utilisation) as integer) || '% used ('
                || active_users_in_seat_window || ' users active in {{ seats_w }} days, '
                || purchased_seats || ' seats)'
            end,
            case when has_team_growth then
                'active users up '
                || cast({{ div_round_half_up(
                    '100 * (active_users_in_team_window - active_users_in_previous_team_window)',
                    'active_users_in_previous_team_window') }} as integer)
                || '% on the previous {{ team_w }} days (' || active_users_in_team_window || ' vs '
                || active_users_in_previous_team_window || ')'
            end,
            case when has_sustained_health then
                {{ cs_literal(ex['sustained_health']['band']) }} || ' now and on the previous '
                || '{{ previous_mondays }} Mondays, first value reached'
            end
        )                                                                   as signal_words,
        concat_ws(', ',
            case when has_seat_limit then 'seat_limit' end,
            case when has_team_growth then 'team_growth' end,
            case when has_sustained_health then 'sustained_health' end
        )                                                                   as signal_types,
        case
            when has_seat_limit then 'high'
            when has_team_growth then 'medium'
            else 'low'
        end                                                                 as urgency,
        case
            when has_seat_limit then 1
            when has_team_growth then 2
            else 3
        end                                                                 as urgency_order,
        case
            when purchased_seats > 0 then
                {{ decimal_ratio(
                    'greatest(1, ceil(' ~ cs_threshold(ex['seat_opportunity_share']) ~ ' * purchased_seats)) * arr_usd',
                    'purchased_seats', scale=4) }}
            else cast({{ cs_threshold(ex['seat_opportunity_share']) }} * arr_usd as decimal(18, 4))
        end                                                                 as estimated_opportunity_usd
    from signals
    where has_seat_limit or has_team_growth or has_sustained_health

),

final as (

    select
        cast(row_number() over (
            order by urgency_order, estimated_opportunity_usd desc, account_id
        ) as integer)                                                       as list_rank,
        cast(account_id as varchar)                                         as account_id,
        cast(account_name as varchar)                                       as account_name,
        cast(owner as varchar)                                              as owner,
        cast(segment as varchar)                                            as segment,
        cast(arr_usd as decimal(18, 4))                                     as current_arr_usd,
        cast(purchased_seats as bigint)                                     as purchased_seats,
        cast(signal_types as varchar)                                       as signal_types,
        cast(signal_words as varchar)                                       as signals,
        cast(urgency as varchar)                                            as urgency,
        cast(estimated_opportunity_usd as decimal(18, 4))                   as estimated_opportunity_usd,
        {{ health_model_version_columns() }},
        cast(as_of_date as date)                                            as as_of_date
    from described

)

select * from final
order by list_rank
