{#-
    The revenue marts that come in two shapes (docs/marts.md): company totals (one row per month
    or period, no segment column) and per segment (`_by_segment`, a segment column). Each
    computation is written once here; `by_segment` picks the shape. With by_segment false every
    row is grouped under one constant key (segment 'all', never written out), so both shapes run
    the same SQL and the totals equal the sums of the per-segment rows where they are additive.
-#}

{#- The segment of a row in the shape asked for: its own, or the one constant key. -#}
{% macro segment_key(column, by_segment) -%}
    {%- if by_segment -%}{{ column }}{%- else -%}'all'{%- endif -%}
{%- endmacro %}

{#- The segment column of the output: `expr as segment,` per segment, nothing for totals. -#}
{% macro segment_output(expr, by_segment) -%}
    {%- if by_segment %}cast({{ expr }} as string) as segment,{% endif -%}
{%- endmacro %}

{#- The rows of both shapes in one relation, the per-segment shape's columns: the totals labelled
    segment 'all'. (Not `union all by name`, which Spark does not have.) -#}
{% macro totals_and_segments(totals, by_segment) -%}
    {%- set columns = [] -%}
    {%- if execute -%}
        {%- set columns = adapter.get_columns_in_relation(by_segment) | map(attribute='name') | list -%}
    {%- endif -%}
    select
        {%- for column in columns %}
        {% if column | lower == 'segment' %}'all'{% else %}{{ column }}{% endif %} as {{ column }}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ totals }}
    union all
    select {{ columns | join(', ') }}
    from {{ by_segment }}
{%- endmacro %}

{#- The MRR bridge in the finance layout (fct_mrr_bridge, fct_mrr_bridge_by_segment) from
    `monthly` (fct_mrr_monthly). -#}
{% macro mrr_bridge_select(monthly, by_segment) -%}
with monthly as (

    select
        month,
        {{ segment_key('segment', by_segment) }} as segment,
        movement,
        mrr_usd,
        previous_mrr_usd,
        mrr_change_usd
    from {{ monthly }}

),

aggregated as (

    select
        month,
        segment,
        sum(previous_mrr_usd)                                             as starting_mrr_usd,
        coalesce(sum(mrr_change_usd) filter (where movement = 'new'), 0)          as new_mrr_usd,
        coalesce(sum(mrr_change_usd) filter (where movement = 'expansion'), 0)    as expansion_mrr_usd,
        coalesce(sum(mrr_change_usd) filter (where movement = 'reactivation'), 0) as reactivation_mrr_usd,
        coalesce(-sum(mrr_change_usd) filter (where movement = 'contraction'), 0) as contraction_mrr_usd,
        coalesce(-sum(mrr_change_usd) filter (where movement = 'churn'), 0)       as churned_mrr_usd,
        sum(mrr_usd)                                                      as ending_mrr_usd,
        count(*) filter (where previous_mrr_usd > 0)                      as starting_accounts,
        count(*) filter (where movement = 'new')                          as new_accounts,
        count(*) filter (where movement = 'expansion')                    as expansion_accounts,
        count(*) filter (where movement = 'reactivation')                 as reactivation_accounts,
        count(*) filter (where movement = 'contraction')                  as contraction_accounts,
        count(*) filter (where movement = 'churn')                        as churned_accounts,
        count(*) filter (where mrr_usd > 0)                               as ending_accounts
    from monthly
    group by month, segment

),

months as (

    select distinct month from monthly

),

segments as (

    select distinct segment from monthly

),

grid as (

    select months.month, segments.segment
    from months
    cross join segments

),

final as (

    select
        cast(grid.month as date)                                           as month,
        {{ segment_output('grid.segment', by_segment) }}
        cast(coalesce(a.starting_mrr_usd, 0) as decimal(18, 4))            as starting_mrr_usd,
        cast(coalesce(a.new_mrr_usd, 0) as decimal(18, 4))                 as new_mrr_usd,
        cast(coalesce(a.expansion_mrr_usd, 0) as decimal(18, 4))           as expansion_mrr_usd,
        cast(coalesce(a.reactivation_mrr_usd, 0) as decimal(18, 4))        as reactivation_mrr_usd,
        cast(coalesce(a.contraction_mrr_usd, 0) as decimal(18, 4))         as contraction_mrr_usd,
        cast(coalesce(a.churned_mrr_usd, 0) as decimal(18, 4))             as churned_mrr_usd,
        cast(coalesce(a.ending_mrr_usd, 0) as decimal(18, 4))              as ending_mrr_usd,
        cast(coalesce(a.starting_accounts, 0) as bigint)                   as starting_accounts,
        cast(coalesce(a.new_accounts, 0) as bigint)                        as new_accounts,
        cast(coalesce(a.expansion_accounts, 0) as bigint)                  as expansion_accounts,
        cast(coalesce(a.reactivation_accounts, 0) as bigint)               as reactivation_accounts,
        cast(coalesce(a.contraction_accounts, 0) as bigint)                as contraction_accounts,
        cast(coalesce(a.churned_accounts, 0) as bigint)                    as churned_accounts,
        cast(coalesce(a.ending_accounts, 0) as bigint)                     as ending_accounts
    from grid
    left join aggregated as a
        on  a.month = grid.month
        and a.segment = grid.segment

)

select * from final
{%- endmacro %}

{#- The MRR bridge in long form (fct_mrr_movements, fct_mrr_movements_by_segment) from
    `monthly` (fct_mrr_monthly). -#}
{% macro mrr_movements_select(monthly, by_segment) -%}
with monthly as (

    select
        month,
        {{ segment_key('segment', by_segment) }} as segment,
        movement,
        mrr_change_usd,
        account_id
    from {{ monthly }}

),

aggregated as (

    select
        month,
        segment,
        movement,
        sum(mrr_change_usd) as mrr_usd,
        count(*)            as accounts
    from monthly
    group by month, segment, movement

),

months as (

    select distinct month from monthly

),

segments as (

    select distinct segment from monthly

),

movements as (

    select *
    from (values
        ('new', 1),
        ('expansion', 2),
        ('reactivation', 3),
        ('contraction', 4),
        ('churn', 5),
        ('flat', 6)
    ) as movements (movement, movement_order)

),

grid as (

    select months.month, segments.segment, movements.movement, movements.movement_order
    from months
    cross join segments
    cross join movements

),

final as (

    select
        cast(grid.month as date)                              as month,
        {{ segment_output('grid.segment', by_segment) }}
        cast(grid.movement as string)                        as movement,
        cast(grid.movement_order as integer)                  as movement_order,
        cast(coalesce(aggregated.mrr_usd, 0) as decimal(18, 4)) as mrr_usd,
        cast(coalesce(aggregated.accounts, 0) as bigint)      as accounts
    from grid
    left join aggregated
        on  aggregated.month = grid.month
        and aggregated.segment = grid.segment
        and aggregated.movement = grid.movement

)

select * from final
{%- endmacro %}

{#- Net and gross revenue retention (fct_revenue_retention, fct_revenue_retention_by_segment)
    from `monthly` (fct_mrr_monthly). -#}
{% macro revenue_retention_select(monthly, by_segment) -%}
{%- set as_of = as_of_date() %}
with monthly as (

    select
        account_id,
        month,
        {{ segment_key('segment', by_segment) }} as segment,
        mrr_usd
    from {{ monthly }}

),

bounds as (

    select
        min(month)               as first_month,
        {{ month_start(as_of) }} as reporting_month
    from monthly

),

months as (

    select
        {{ month_series('first_month', 'reporting_month') }} as month
    from bounds

),

period_starts as (

    select distinct 'month' as period_grain, month as period_start, 1 as period_months
    from months
    union all
    select distinct 'quarter', {{ month_start("date_trunc('quarter', month)") }}, 3
    from months
    union all
    select distinct 'year', {{ month_start("date_trunc('year', month)") }}, 12
    from months
    union all
    select distinct 'trailing_12m', {{ add_months('month', -11) }}, 12
    from months

),

periods as (

    select
        period_starts.period_grain,
        period_starts.period_start,
        {{ month_end(add_months('period_starts.period_start', 'period_starts.period_months - 1')) }}
                                                               as period_end,
        {{ add_months('period_starts.period_start', -1) }}    as cohort_month,
        least(
            {{ add_months('period_starts.period_start', 'period_starts.period_months - 1') }},
            bounds.reporting_month
        )                                                      as end_month
    from period_starts
    cross join bounds
    where period_starts.period_start > bounds.first_month
      and period_starts.period_start <= bounds.reporting_month

),

segments as (

    select distinct segment from monthly

),

cohort_accounts as (

    select
        periods.period_grain,
        periods.period_start,
        starting.account_id,
        starting.segment,
        starting.mrr_usd                  as start_mrr_usd,
        coalesce(ending.mrr_usd, 0)       as end_mrr_usd
    from periods
    inner join monthly as starting
        on  starting.month = periods.cohort_month
        and starting.mrr_usd > 0
    left join monthly as ending
        on  ending.account_id = starting.account_id
        and ending.month = periods.end_month

),

aggregated as (

    select
        period_grain,
        period_start,
        segment,
        count(*)                                                            as cohort_accounts,
        sum(start_mrr_usd)                                                  as starting_mrr_usd,
        sum(end_mrr_usd)                                                    as ending_mrr_usd,
        sum(greatest(end_mrr_usd - start_mrr_usd, 0))                       as expansion_mrr_usd,
        coalesce(sum(start_mrr_usd - end_mrr_usd)
            filter (where end_mrr_usd > 0 and end_mrr_usd < start_mrr_usd), 0) as contraction_mrr_usd,
        coalesce(sum(start_mrr_usd) filter (where end_mrr_usd = 0), 0)      as churned_mrr_usd,
        sum(least(end_mrr_usd, start_mrr_usd))                              as retained_usd
    from cohort_accounts
    group by period_grain, period_start, segment

),

final as (

    select
        cast(periods.period_grain as string)                              as period_grain,
        cast(periods.period_start as date)                                 as period_start,
        {{ segment_output('segments.segment', by_segment) }}
        cast(periods.period_end as date)                                   as period_end,
        cast(periods.cohort_month as date)                                 as cohort_month,
        cast(periods.end_month as date)                                    as end_month,
        cast(coalesce(a.cohort_accounts, 0) as bigint)                     as cohort_accounts,
        cast(coalesce(a.starting_mrr_usd, 0) as decimal(18, 4))            as starting_mrr_usd,
        cast(coalesce(a.ending_mrr_usd, 0) as decimal(18, 4))              as ending_mrr_usd,
        cast(coalesce(a.expansion_mrr_usd, 0) as decimal(18, 4))           as expansion_mrr_usd,
        cast(coalesce(a.contraction_mrr_usd, 0) as decimal(18, 4))         as contraction_mrr_usd,
        cast(coalesce(a.churned_mrr_usd, 0) as decimal(18, 4))             as churned_mrr_usd,
        cast({{ decimal_ratio('a.ending_mrr_usd', 'a.starting_mrr_usd') }} as decimal(18, 6))
                                                                           as nrr,
        cast({{ decimal_ratio('a.retained_usd', 'a.starting_mrr_usd') }} as decimal(18, 6))
                                                                           as grr,
        periods.period_end <= {{ as_of }}                                  as is_complete
    from periods
    cross join segments
    left join aggregated as a
        on  a.period_grain = periods.period_grain
        and a.period_start = periods.period_start
        and a.segment = segments.segment

)

select * from final
{%- endmacro %}

{#- Time-to-value cohorts (fct_ttv_cohorts, fct_ttv_cohorts_by_segment) from `ttv`
    (fct_time_to_value). The share at first value within n days counts only the accounts
    observed n days: started at least n days before as_of, or at first value within n days
    already (in the numerator, so in the denominator). An account not there yet and started
    fewer than n days ago cannot have shown whether it gets there within n days: it is left out
    of that n's share. Each shape divides its own counts (never a mean of segment shares). -#}
{% macro ttv_cohorts_select(ttv, by_segment) -%}
{%- set as_of = as_of_date() %}
{%- set within_days = [7, 14, 30, 60, 90] %}
with by_segment as (

    select
        start_month,
        {{ segment_key('segment', by_segment) }} as segment,
        has_reached_first_value                  as reached,
        ttv_days,
        observed_days,
        {{ as_of }} - subscription_start_date    as days_since_start
    from {{ ttv }}

),

counts as (

    select
        start_month,
        segment,
        count(*)                                            as accounts,
        count(*) filter (where reached)                     as reached_accounts,
        {%- for n in within_days %}
        count(*) filter (where reached and ttv_days <= {{ n }}) as accounts_reached_within_{{ n }}d,
        {%- endfor %}
        {%- for n in within_days %}
        count(*) filter (
            where days_since_start >= {{ n }} or (reached and ttv_days <= {{ n }})
        )                                                   as observed_{{ n }}d_accounts,
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
        {{ segment_output('counts.segment', by_segment) }}
        cast(counts.accounts as bigint)                     as accounts,
        cast(counts.reached_accounts as bigint)             as reached_accounts,
        cast(counts.censored_accounts as bigint)            as censored_accounts,
        {%- for n in within_days %}
        cast(counts.accounts_reached_within_{{ n }}d as bigint)
                                                            as accounts_reached_within_{{ n }}d,
        {%- endfor %}
        {%- for n in within_days %}
        cast(counts.observed_{{ n }}d_accounts as bigint)   as observed_{{ n }}d_accounts,
        {%- endfor %}
        {%- for n in within_days %}
        cast({{ decimal_ratio(
            'counts.accounts_reached_within_' ~ n ~ 'd', 'counts.observed_' ~ n ~ 'd_accounts'
        ) }} as decimal(18, 6))                             as reached_within_{{ n }}d_share,
        {%- endfor %}
        cast(medians.median_ttv_days as integer)            as median_ttv_days,
        cast({{ as_of }} as date)                           as as_of_date
    from counts
    left join medians
        on  medians.start_month = counts.start_month
        and medians.segment = counts.segment

)

select * from final
{%- endmacro %}
