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

{#- The rows of `scores` (int_backtest_scores) twice: under segment 'all' and under their own
    segment, so every statistic comes overall and by segment from the same query. -#}
{% macro backtest_rows_by_segment(scores) -%}
    select
        account_id,
        as_of_date,
        segment,
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

    union all

    select
        account_id,
        as_of_date,
        'all' as segment,
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
