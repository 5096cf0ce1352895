-- MetricFlow's day time spine (models/semantic/_time_spine.yml configures it): one row per UTC
-- day from 2015-01-01 through 2040-12-31. Fixed bounds, not the data's: the spine never changes
-- with the data or the reporting date, so a result as of D cannot depend on later-dated rows.
-- MetricFlow joins to it for time granularities, offsets and cumulative metrics; nothing in the
-- pipeline reads it.
{{ config(materialized='table', schema='semantic') }}

with days as (

    select
        cast(unnest(generate_series(
            date '2015-01-01', date '2040-12-31', interval 1 day
        )) as date) as date_day

)

select * from days
