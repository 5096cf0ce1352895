-- Time-to-value cohorts as of the reporting date (var as_of): one row per start month (the month
-- of subscription_started_on) and segment (`all` and each segment) of fct_time_to_value.
--
-- reached_within_<n>d: accounts whose first value came within n days of the start
-- (ttv_days <= n). Recent cohorts have not been observed for n days yet: compare them with care.
-- median_ttv_days: the Kaplan-Meier median, which treats accounts not there yet as censored at
-- as_of (observed_days), not as missing. At each distinct event time t (a ttv_days of a reached
-- account), n_t = accounts with observed_days >= t (censored at t are still at risk) and
-- d_t = accounts reaching first value at t; S(t) = prod over event times <= t of (1 - d_t / n_t).
-- The median is the smallest t with S(t) <= 0.5 (compared with a 1e-9 tolerance: S is a product of
-- doubles), null when S never gets there (fewer than half reached, as far as is known).
{%- set as_of = as_of_date() %}
{%- set within_days = [7, 14, 30, 60, 90] %}

with ttv as (

    select * from {{ ref('fct_time_to_value') }}

),

by_segment as (

    select start_month, segment, reached, ttv_days, observed_days from ttv
    union all
    select start_month, 'all', reached, ttv_days, observed_days from ttv

),

counts as (

    select
        start_month,
        segment,
        count(*)                                            as accounts,
        count(*) filter (where reached)                     as reached_accounts,
        {%- for n in within_days %}
        count(*) filter (where reached and ttv_days <= {{ n }}) as reached_within_{{ n }}d,
        {%- endfor %}
        count(*) filter (where not reached)                 as censored_accounts
    from by_segment
    group by start_month, segment

),

at_times as (

    select
        start_month,
        segment,
        observed_days                       as t,
        count(*)                            as leaving,
        count(*) filter (where reached)     as events
    from by_segment
    group by start_month, segment, observed_days

),

at_risk as (

    select
        *,
        sum(leaving) over (
            partition by start_month, segment
            order by t desc
            rows between unbounded preceding and current row
        ) as at_risk
    from at_times

),

survival as (

    select
        start_month,
        segment,
        t,
        product(1 - events / at_risk) over (
            partition by start_month, segment
            order by t
            rows between unbounded preceding and current row
        ) as survival
    from at_risk
    where events > 0

),

medians as (

    select
        start_month,
        segment,
        min(t) filter (where survival <= 0.5 + 1e-9) as median_ttv_days
    from survival
    group by start_month, segment

),

final as (

    select
        cast(counts.start_month as date)                    as start_month,
        cast(counts.segment as varchar)                     as segment,
        cast(counts.accounts as bigint)                     as accounts,
        cast(counts.reached_accounts as bigint)             as reached_accounts,
        cast(counts.censored_accounts as bigint)            as censored_accounts,
        {%- for n in within_days %}
        cast(counts.reached_within_{{ n }}d as bigint)      as reached_within_{{ n }}d,
        {%- endfor %}
        cast(medians.median_ttv_days as integer)            as median_ttv_days,
        cast({{ as_of }} as date)                           as as_of_date
    from counts
    left join medians
        on  medians.start_month = counts.start_month
        and medians.segment = counts.segment

)

select * from final
