{#-
    The backtest of the health model (docs/metrics.md "Backtest"): the four marts
    fct_health_backtest* read intermediate.int_backtest_scores through these macros. Plain SQL
    (window functions and aggregates only), so another engine can run it.
-#}

{#- The columns that identify one evaluation: a health-model version, a horizon, a scorer and a
    segment. Every mart groups by them (and by its own band, decile or bin); never null, so they
    also join (the version's name, which may be null, is carried by max()). -#}
{% macro backtest_group_columns() -%}
    {{ return(['health_model_version', 'horizon_days', 'scorer', 'segment']) }}
{%- endmacro %}

{#- The rows of `scores` (int_backtest_scores) for one shape of the marts: by segment, each row
    under its own segment; overall (by_segment false), every row under the one constant key
    'all', which the overall marts do not write out. Every statistic groups by
    backtest_group_columns(), so both shapes come from the same query. -#}
{% macro backtest_rows(scores, by_segment) -%}
    select
        account_id,
        as_of_date,
        {{ segment_key('segment', by_segment) }} as segment,
        health_model_version,
        health_model_name,
        horizon_days,
        scorer,
        risk_score,
        band,
        probability,
        churn_model_version,
        churned
    from {{ scores }}
{%- endmacro %}

{#-
    ROC AUC of `risk` (higher = riskier) against the boolean `churned`, per `group_by`, over the
    rows of `rows` whose `risk` is not null: the Mann-Whitney statistic

        AUC = (R1 - n1 (n1 + 1) / 2) / (n1 n0)

    with R1 the sum of the churned rows' ranks by ascending risk, tied risks sharing their average
    rank (the first rank of the tie + (size of the tie - 1) / 2), n1 the churned and n0 the other
    rows. It is the probability that a random churned row is riskier than a random other one, a
    tie counting one half (scikit-learn's roc_auc_score). Null when a group has no churned or no
    other row.
-#}
{% macro backtest_auc(rows, group_by, risk, churned='churned', auc='auc') -%}
    {%- set keys = group_by | join(', ') %}
    select
        {{ keys }},
        case
            when sum(case when {{ churned }} then 1 else 0 end) > 0
             and sum(case when {{ churned }} then 0 else 1 end) > 0
            then (
                sum(case when {{ churned }} then average_rank else 0 end)
                - cast(sum(case when {{ churned }} then 1 else 0 end) as double)
                  * (cast(sum(case when {{ churned }} then 1 else 0 end) as double) + 1) / 2
            ) / (
                cast(sum(case when {{ churned }} then 1 else 0 end) as double)
                * cast(sum(case when {{ churned }} then 0 else 1 end) as double)
            )
        end as {{ auc }}
    from (
        select
            {{ keys }},
            {{ churned }},
            cast(rank() over (partition by {{ keys }} order by {{ risk }}) as double)
                + cast(count(*) over (partition by {{ keys }}, {{ risk }}) - 1 as double) / 2
                as average_rank
        from {{ rows }}
        where {{ risk }} is not null
    ) as ranked
    group by {{ keys }}
{%- endmacro %}

{#- `numerator` / `denominator` as a DOUBLE, null when the denominator is 0. -#}
{% macro backtest_rate(numerator, denominator) -%}
    case when {{ denominator }} > 0 then cast({{ numerator }} as double) / cast({{ denominator }} as double) end
{%- endmacro %}

{#-
    Pre-hook of the backtest marts: before an incremental run, delete the rows of this run's
    health-model version and churn horizon, so a re-run replaces them (also when it now has no
    rows: no complete outcome as of an earlier date) and other versions' and horizons' rows stay.
    The marts are incremental with delete+insert on the same keys; this covers the empty case.
-#}
{% macro backtest_delete_this_run() -%}
    {%- if execute and is_incremental() -%}
        delete from {{ this }}
        where health_model_version = {{ cs_literal(health_model_version().get('version')) }}
          and horizon_days = {{ cs_int(var('churn_horizon_days', none)) }}
    {%- endif -%}
{%- endmacro %}

{#- Fails with one row per value of `column_name` outside min_value..max_value (nulls pass): a
    probability the backtest calibrates must be one. -#}
{% test backtest_within(model, column_name, min_value, max_value) %}

select {{ column_name }}, count(*) as row_count
from {{ model }}
where {{ column_name }} < {{ min_value }} or {{ column_name }} > {{ max_value }}
group by {{ column_name }}

{% endtest %}

{#- The body of fct_health_backtest and fct_health_backtest_by_segment (see the models' headers). -#}
{% macro backtest_summary_select(scores, by_segment) -%}
{%- set as_of = as_of_date() %}
{%- set keys = backtest_group_columns() %}

with scored as (

    {{ backtest_rows(scores, by_segment) }}

),

-- Each scorer's rows with the baseline's risk on the same account, date and segment.
paired as (

    select
        scored.*,
        baseline.risk_score as baseline_risk_score
    from scored
    left join scored as baseline
        on  baseline.health_model_version = scored.health_model_version
        and baseline.horizon_days = scored.horizon_days
        and baseline.segment = scored.segment
        and baseline.account_id = scored.account_id
        and baseline.as_of_date = scored.as_of_date
        and baseline.scorer = 'baseline_activity_30d'

),

auc as (

    {{ backtest_auc('paired', keys, 'risk_score') }}

),

baseline_auc as (

    {{ backtest_auc('paired', keys, 'baseline_risk_score', auc='baseline_auc') }}

),

summary as (

    select
        {{ keys | join(', ') }},
        max(health_model_name)                                    as health_model_name,
        max(churn_model_version)                                  as churn_model_version,
        min(as_of_date)                                           as first_scored_date,
        max(as_of_date)                                           as last_scored_date,
        count(distinct as_of_date)                                as scored_dates,
        count(*)                                                  as scored_rows,
        count(distinct account_id)                                as accounts,
        sum(case when churned then 1 else 0 end)                  as churned_rows,
        avg(
            case
                when probability is not null then
                    (probability - case when churned then 1.0 else 0.0 end)
                    * (probability - case when churned then 1.0 else 0.0 end)
            end
        )                                                         as brier_score
    from scored
    group by {{ keys | join(', ') }}

),

final as (

    select
        cast({{ as_of }} as date)                                 as evaluated_as_of_date,
        cast(summary.horizon_days as integer)                     as horizon_days,
        cast(summary.health_model_version as string)             as health_model_version,
        cast(summary.health_model_name as string)                as health_model_name,
        cast(summary.churn_model_version as string)              as churn_model_version,
        cast(summary.scorer as string)                           as scorer,
        {{ segment_output('summary.segment', by_segment) }}
        cast(summary.first_scored_date as date)                   as first_scored_date,
        cast(summary.last_scored_date as date)                    as last_scored_date,
        cast(summary.scored_dates as bigint)                      as scored_dates,
        cast(summary.scored_rows as bigint)                       as scored_rows,
        cast(summary.accounts as bigint)                          as accounts,
        cast(summary.churned_rows as bigint)                      as churned_rows,
        cast({{ backtest_rate('summary.churned_rows', 'summary.scored_rows') }} as double)
                                                                  as churn_rate,
        cast(auc.auc as double)                                   as auc,
        cast(baseline_auc.baseline_auc as double)                 as baseline_auc,
        cast(auc.auc - baseline_auc.baseline_auc as double)       as auc_minus_baseline,
        cast(auc.auc < baseline_auc.baseline_auc as boolean)      as is_worse_than_baseline,
        cast(summary.brier_score as double)                       as brier_score
    from summary
    left join auc
        on  auc.health_model_version = summary.health_model_version
        and auc.horizon_days = summary.horizon_days
        and auc.scorer = summary.scorer
        and auc.segment = summary.segment
    left join baseline_auc
        on  baseline_auc.health_model_version = summary.health_model_version
        and baseline_auc.horizon_days = summary.horizon_days
        and baseline_auc.scorer = summary.scorer
        and baseline_auc.segment = summary.segment

)

select * from final
{%- endmacro %}

{#- The body of fct_health_backtest_bands and fct_health_backtest_bands_by_segment (see the models' headers). -#}
{% macro backtest_bands_select(scores, by_segment) -%}
{%- set as_of = as_of_date() %}
{%- set keys = backtest_group_columns() %}

with scored as (

    {{ backtest_rows(scores, by_segment) }}

),

by_band as (

    select
        {{ keys | join(', ') }},
        band,
        max(health_model_name)                      as health_model_name,
        max(churn_model_version)                    as churn_model_version,
        count(*)                                    as scored_rows,
        sum(case when churned then 1 else 0 end)    as churned_rows
    from scored
    where band is not null
    group by {{ keys | join(', ') }}, band

),

final as (

    select
        cast({{ as_of }} as date)                   as evaluated_as_of_date,
        cast(horizon_days as integer)               as horizon_days,
        cast(health_model_version as string)       as health_model_version,
        cast(health_model_name as string)          as health_model_name,
        cast(churn_model_version as string)        as churn_model_version,
        cast(scorer as string)                     as scorer,
        {{ segment_output('segment', by_segment) }}
        cast(band as string)                       as band,
        cast(scored_rows as bigint)                 as scored_rows,
        cast(churned_rows as bigint)                as churned_rows,
        cast({{ backtest_rate('churned_rows', 'scored_rows') }} as double)
                                                    as churn_rate
    from by_band

)

select * from final
{%- endmacro %}

{#- The body of fct_health_backtest_deciles and fct_health_backtest_deciles_by_segment (see the models' headers). -#}
{% macro backtest_deciles_select(scores, by_segment) -%}
{%- set as_of = as_of_date() %}
{%- set keys = backtest_group_columns() %}

with scored as (

    {{ backtest_rows(scores, by_segment) }}

),

ranked as (

    select
        *,
        ntile(10) over (
            partition by {{ keys | join(', ') }}
            order by risk_score desc, account_id, as_of_date
        ) as decile
    from scored

),

by_decile as (

    select
        {{ keys | join(', ') }},
        decile,
        max(health_model_name)                      as health_model_name,
        max(churn_model_version)                    as churn_model_version,
        count(*)                                    as scored_rows,
        sum(case when churned then 1 else 0 end)    as churned_rows
    from ranked
    group by {{ keys | join(', ') }}, decile

),

overall as (

    select
        {{ keys | join(', ') }},
        count(*)                                    as scored_rows,
        sum(case when churned then 1 else 0 end)    as churned_rows
    from scored
    group by {{ keys | join(', ') }}

),

final as (

    select
        cast({{ as_of }} as date)                            as evaluated_as_of_date,
        cast(by_decile.horizon_days as integer)              as horizon_days,
        cast(by_decile.health_model_version as string)      as health_model_version,
        cast(by_decile.health_model_name as string)         as health_model_name,
        cast(by_decile.churn_model_version as string)       as churn_model_version,
        cast(by_decile.scorer as string)                    as scorer,
        {{ segment_output('by_decile.segment', by_segment) }}
        cast(by_decile.decile as integer)                    as decile,
        cast(by_decile.scored_rows as bigint)                as scored_rows,
        cast(by_decile.churned_rows as bigint)               as churned_rows,
        cast({{ backtest_rate('by_decile.churned_rows', 'by_decile.scored_rows') }} as double)
                                                             as churn_rate,
        cast(
            case
                when overall.churned_rows > 0 then
                    {{ backtest_rate('by_decile.churned_rows', 'by_decile.scored_rows') }}
                    / {{ backtest_rate('overall.churned_rows', 'overall.scored_rows') }}
            end
            as double
        )                                                    as lift
    from by_decile
    inner join overall
        on  overall.health_model_version = by_decile.health_model_version
        and overall.horizon_days = by_decile.horizon_days
        and overall.scorer = by_decile.scorer
        and overall.segment = by_decile.segment

)

select * from final
{%- endmacro %}

{#- The body of fct_health_backtest_calibration and fct_health_backtest_calibration_by_segment (see the models' headers). -#}
{% macro backtest_calibration_select(scores, by_segment) -%}
{%- set as_of = as_of_date() %}
{%- set keys = backtest_group_columns() %}

with scored as (

    {{ backtest_rows(scores, by_segment) }}

),

binned as (

    select
        *,
        case
            when probability >= 1 then 9
            else cast(floor(probability * 10) as integer)
        end as probability_bin
    from scored
    where probability is not null

),

by_bin as (

    select
        {{ keys | join(', ') }},
        probability_bin,
        max(health_model_name)                      as health_model_name,
        max(churn_model_version)                    as churn_model_version,
        count(*)                                    as scored_rows,
        sum(case when churned then 1 else 0 end)    as churned_rows,
        avg(probability)                            as mean_probability
    from binned
    group by {{ keys | join(', ') }}, probability_bin

),

final as (

    select
        cast({{ as_of }} as date)                   as evaluated_as_of_date,
        cast(horizon_days as integer)               as horizon_days,
        cast(health_model_version as string)       as health_model_version,
        cast(health_model_name as string)          as health_model_name,
        cast(churn_model_version as string)        as churn_model_version,
        cast(scorer as string)                     as scorer,
        {{ segment_output('segment', by_segment) }}
        cast(probability_bin as integer)            as probability_bin,
        cast(scored_rows as bigint)                 as scored_rows,
        cast(churned_rows as bigint)                as churned_rows,
        cast(mean_probability as double)            as mean_probability,
        cast({{ backtest_rate('churned_rows', 'scored_rows') }} as double)
                                                    as churn_rate
    from by_bin

)

select * from final
{%- endmacro %}
