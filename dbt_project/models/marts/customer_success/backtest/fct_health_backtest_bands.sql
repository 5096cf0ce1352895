-- The backtest by band: churn rate and count per band of each scorer that has bands
-- (health_score: health_band, churn_risk: churn_risk_band), per health-model version, horizon and
-- segment (`all` and each segment), over the scored dates with a complete outcome. Rows without
-- a band are left out, so scorers without bands (baseline_activity_30d, churn_probability) have no
-- rows here; a scorer's bands add up to its scored_rows in fct_health_backtest.
--
-- Incremental like fct_health_backtest (the folder config in dbt_project.yml): a run replaces its
-- own version's and horizon's rows.
{%- set as_of = as_of_date() %}
{%- set keys = backtest_group_columns() %}

with scored as (

    {{ backtest_rows_by_segment(ref('int_backtest_scores')) }}

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
        cast({{ as_of }} as date)                   as evaluated_as_of,
        cast(horizon_days as integer)               as horizon_days,
        cast(health_model_version as varchar)       as health_model_version,
        cast(health_model_name as varchar)          as health_model_name,
        cast(churn_model_version as varchar)        as churn_model_version,
        cast(scorer as varchar)                     as scorer,
        cast(segment as varchar)                    as segment,
        cast(band as varchar)                       as band,
        cast(scored_rows as bigint)                 as scored_rows,
        cast(churned_rows as bigint)                as churned_rows,
        cast({{ backtest_rate('churned_rows', 'scored_rows') }} as double)
                                                    as churn_rate
    from by_band

)

select * from final
