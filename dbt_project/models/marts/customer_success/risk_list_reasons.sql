-- The risk list's reasons, one row per account on risk_list and reason that fired (BI tools
-- filter and count these; risk_list.reasons is the same rows joined with '; ' in reason_order).
-- reason_code: health_band, renewal, critical_tickets, champion_left, usage_decline,
-- ticket_spike, low_nps, payment_failures; reason: the words (macros/lists.sql, the one place
-- that defines them). list_rank, health_model_version and as_of_date are the list row's.
{%- set as_of = as_of_date() %}

with health as (

    select * from {{ ref('fct_account_health') }}
    where as_of_date = {{ as_of }}

),

flagged as (

    {{ risk_list_flagged('health') }}

),

reason_rows as (

    {{ risk_list_reason_rows('flagged') }}

),

risk_list as (

    select * from {{ ref('risk_list') }}

),

final as (

    select
        cast(risk_list.list_rank as integer)                as list_rank,
        cast(risk_list.account_id as string)               as account_id,
        cast(reason_rows.reason_code as string)            as reason_code,
        cast(reason_rows.reason as string)                 as reason,
        cast(reason_rows.reason_order as integer)           as reason_order,
        cast(risk_list.health_model_version as string)     as health_model_version,
        cast(risk_list.as_of_date as date)                  as as_of_date
    from reason_rows
    inner join risk_list
        on risk_list.account_id = reason_rows.account_id

)

select * from final
order by list_rank, reason_order
