-- Every version of the health model that has scored this warehouse, one row per version (var
-- health_model_version, metrics/dbt_vars.py): its short and full content hash, its name, the
-- earliest reporting date it scored, when it first did, and its YAML (the validated model, which
-- loads back to the same version). The rows of fct_account_health, risk_list, expansion_list and
-- adoption_alerts name the version that scored them in health_model_version.
--
-- Incremental and never fully refreshed: a run appends the current version when it is new, or
-- rewrites its one row (delete+insert on health_model_version) keeping first_built_at and the
-- earliest first_scored_as_of_date; the other versions' rows are never touched. `dbt build
-- --full-refresh` leaves this table alone (full_refresh=false), so the list of versions survives.
{{ config(
    materialized='incremental',
    unique_key='health_model_version',
    incremental_strategy='delete+insert',
    on_schema_change='append_new_columns',
    full_refresh=false,
) }}
{%- set as_of = as_of_date() %}
{%- set v = health_model_version() %}

with this_run as (

    select
        {{ cs_literal(v.get('version')) }}                                  as health_model_version,
        {{ cs_literal(v.get('name')) }}                                     as health_model_name,
        {{ cs_literal(v.get('sha256')) }}                                   as content_sha256,
        {{ as_of }}                                                         as scored_as_of,
        {{ cs_literal(run_started_at.strftime('%Y-%m-%d %H:%M:%S'), 'timestamp') }}
                                                                            as built_at,
        {{ cs_literal(v.get('yaml_text')) }}                                as yaml_text

),

earlier as (

    {%- if is_incremental() %}
    select health_model_version, first_scored_as_of_date, first_built_at
    from {{ this }}
    where health_model_version = (select health_model_version from this_run)
    {%- else %}
    select
        cast(null as string)   as health_model_version,
        cast(null as date)      as first_scored_as_of_date,
        cast(null as timestamp) as first_built_at
    where false
    {%- endif %}

),

final as (

    select
        cast(this_run.health_model_version as string)                     as health_model_version,
        cast(this_run.health_model_name as string)                        as health_model_name,
        cast(this_run.content_sha256 as string)                           as content_sha256,
        cast(least(this_run.scored_as_of, earlier.first_scored_as_of_date) as date)
                                                                            as first_scored_as_of_date,
        cast(coalesce(earlier.first_built_at, this_run.built_at) as timestamp)
                                                                            as first_built_at,
        cast(this_run.yaml_text as string)                                 as yaml_text
    from this_run
    left join earlier
        on earlier.health_model_version = this_run.health_model_version
    where this_run.health_model_version is not null

)

select * from final
