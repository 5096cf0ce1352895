-- The expansion list's signals, one row per account on expansion_list and signal that fired (BI
-- tools filter and count these; expansion_list.signals and signal_types are the same rows joined
-- in signal order). signal_type: seat_limit, team_growth, sustained_health; signal: the words
-- (macros/lists.sql, the one place that defines them); urgency: this signal's (seat_limit high,
-- team_growth medium, sustained_health low; the list row's urgency is the highest of its
-- signals). list_rank, health_model_version and as_of_date are the list row's.
with {{ expansion_list_signal_ctes() }},

signal_rows as (

    {{ expansion_list_signal_rows('signals') }}

),

expansion_list as (

    select * from {{ ref('expansion_list') }}

),

final as (

    select
        cast(expansion_list.list_rank as integer)               as list_rank,
        cast(expansion_list.account_id as string)              as account_id,
        cast(signal_rows.signal_type as string)                as signal_type,
        cast(signal_rows.signal as string)                     as signal,
        cast(signal_rows.urgency as string)                    as urgency,
        cast(expansion_list.health_model_version as string)    as health_model_version,
        cast(expansion_list.as_of_date as date)                 as as_of_date
    from signal_rows
    inner join expansion_list
        on expansion_list.account_id = signal_rows.account_id

)

select * from final
order by list_rank
