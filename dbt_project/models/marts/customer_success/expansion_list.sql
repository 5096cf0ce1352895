-- The expansion list as of the reporting date D (var as_of): accounts scored at D with at least
-- one signal (lists.expansion):
--   seat_limit (urgency high): u = users active in the financial.seats window / purchased seats
--     >= seat_limit_utilisation (default 0.85); needs purchased seats;
--   team_growth (medium): users active in the team_growth window to D exceed those of the window
--     before by more than growth_above (default 30%), with at least one user before;
--   sustained_health (low): in the sustained_health band (green) at D and at each of the
--     previous_mondays (3) Mondays before D, and first value reached (fct_time_to_value).
-- signals / signal_types: the rows of expansion_list_signals joined in signal order ('; ' and ', ';
-- both from macros/lists.sql). urgency: the highest of its signals. estimated_opportunity_usd: with seats,
-- max(1, ceil(seat_opportunity_share x seats)) x ARR per seat (ARR / seats), rounded half away
-- from zero to 4 decimals; without seats, seat_opportunity_share x ARR. list_rank: urgency (high
-- first), then estimated opportunity (largest first), then account_id. Owner is the CSM handle;
-- no contact names or e-mails.
{%- set as_of = as_of_date() %}
{%- set hm = health_model() %}
{%- set ex = hm['lists']['expansion'] %}

with {{ expansion_list_signal_ctes() }},

signal_rows as (

    -- one row per signal (macros/lists.sql; expansion_list_signals publishes them)
    {{ expansion_list_signal_rows('signals') }}

),

joined_signals as (

    select
        account_id,
        string_agg(signal, '; ' order by signal_order)                      as signal_words,
        string_agg(signal_type, ', ' order by signal_order)                 as signal_types
    from signal_rows
    group by account_id

),

described as (

    select
        signals.*,
        joined_signals.signal_words,
        joined_signals.signal_types,
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
    inner join joined_signals
        on joined_signals.account_id = signals.account_id

),

final as (

    select
        cast(row_number() over (
            order by urgency_order, estimated_opportunity_usd desc, account_id
        ) as integer)                                                       as list_rank,
        cast(account_id as string)                                         as account_id,
        cast(account_name as string)                                       as account_name,
        cast(owner as string)                                              as owner,
        cast(segment as string)                                            as segment,
        cast(arr_usd as decimal(18, 4))                                     as current_arr_usd,
        cast(purchased_seats as bigint)                                     as purchased_seats,
        cast(signal_types as string)                                       as signal_types,
        cast(signal_words as string)                                       as signals,
        cast(urgency as string)                                            as urgency,
        cast(estimated_opportunity_usd as decimal(18, 4))                   as estimated_opportunity_usd,
        {{ health_model_version_columns() }},
        cast(as_of_date as date)                                            as as_of_date
    from described

)

select * from final
order by list_rank
