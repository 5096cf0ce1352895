{#- dbt's rule for rebuilding an incremental model in full (the --full-refresh flag, unless the
    model's config says full_refresh), plus the models the pipeline names in the environment
    variable CSW_FULL_REFRESH_MODELS (comma-separated): incremental models whose rows were built
    by other code (orchestration/defs/dbt/code_refresh.py). dbt's own flag is for every model of
    a call at once, and the pipeline builds every model in one call. A model configured
    full_refresh: false (the backtest history) keeps its rows either way. -#}
{% macro should_full_refresh() -%}
    {%- set named = env_var('CSW_FULL_REFRESH_MODELS', '').split(',') | map('trim') | list -%}
    {%- if config.get('full_refresh') is none and model.name in named -%}
        {{ return(true) }}
    {%- endif -%}
    {{ return(dbt.should_full_refresh()) }}
{%- endmacro %}
