-- The backtest by decile: each scorer's rows (per health-model version, horizon and segment,
-- `all` and each segment) cut into ten equal parts by risk_score, decile 1 the riskiest tenth
-- (ntile(10) by risk_score descending; equal risks are split by account_id, then as_of_date, so
-- the cut is the same on every run). Churn rate per decile and its lift: the decile's churn rate
-- / the segment's (null when nobody in the segment churned). A scorer that ranks well has lift
-- well above 1 in decile 1 and below 1 in decile 10. Groups of fewer than ten rows have fewer
-- deciles.
--
-- Incremental like fct_health_backtest (the folder config in dbt_project.yml): a run replaces its
-- own version's and horizon's rows.
{%- set as_of = as_of_date() %}
{%- set keys = backtest_group_columns() %}

with scored as (

    {{ backtest_rows_by_segment(ref('int_backtest_scores')) }}

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
        cast({{ as_of }} as date)                            as evaluated_as_of,
        cast(by_decile.horizon_days as integer)              as horizon_days,
        cast(by_decile.health_model_version as varchar)      as health_model_version,
        cast(by_decile.health_model_name as varchar)         as health_model_name,
        cast(by_decile.churn_model_version as varchar)       as churn_model_version,
        cast(by_decile.scorer as varchar)                    as scorer,
        cast(by_decile.segment as varchar)                   as segment,
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
