-- The backtest's calibration: for every scorer with a probability (churn_probability, the
-- learned model's), its rows (per health-model version, horizon and segment, `all` and each
-- segment) binned by predicted probability in tenths (probability_bin k: k/10 <= p < (k+1)/10,
-- p = 1 in bin 9; int_backtest_scores' tests keep p within 0..1), the mean predicted probability against the observed churn rate. Calibrated:
-- the two agree in every bin. Scorers without a probability have no rows here.
--
-- Incremental like fct_health_backtest (the folder config in dbt_project.yml): a run replaces its
-- own version's and horizon's rows.
{%- set as_of = as_of_date() %}
{%- set keys = backtest_group_columns() %}

with scored as (

    {{ backtest_rows_by_segment(ref('int_backtest_scores')) }}

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
        cast({{ as_of }} as date)                   as evaluated_as_of,
        cast(horizon_days as integer)               as horizon_days,
        cast(health_model_version as varchar)       as health_model_version,
        cast(health_model_name as varchar)          as health_model_name,
        cast(churn_model_version as varchar)        as churn_model_version,
        cast(scorer as varchar)                     as scorer,
        cast(segment as varchar)                    as segment,
        cast(probability_bin as integer)            as probability_bin,
        cast(scored_rows as bigint)                 as scored_rows,
        cast(churned_rows as bigint)                as churned_rows,
        cast(mean_probability as double)            as mean_probability,
        cast({{ backtest_rate('churned_rows', 'scored_rows') }} as double)
                                                    as churn_rate
    from by_bin

)

select * from final
