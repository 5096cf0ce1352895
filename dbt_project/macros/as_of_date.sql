{#-
    The reporting date as a SQL DATE literal. It comes from the var `as_of` ('YYYY-MM-DD'), else
    from the environment variable CSW_AS_OF (the pipeline's dbt call passes it there: a var that
    changes every day would make dbt parse the whole project again on every run, while a changed
    environment variable re-parses only the files that read it), else today's date in UTC. Every
    time-dependent model calls this macro directly, so a unit test can pin the date with
    `overrides: macros:`.
-#}
{% macro as_of_date() -%}
    {%- set value = var('as_of', none) -%}
    {%- if value is none or (value | string | trim) == '' -%}
        {%- set value = env_var('CSW_AS_OF', '') -%}
    {%- endif -%}
    {%- if value is none or (value | string | trim) == '' -%}
        {%- set text = modules.datetime.datetime.now(modules.pytz.utc).date().isoformat() -%}
    {%- else -%}
        {%- set text = value | string | trim -%}
    {%- endif -%}
    {%- if not modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', text) -%}
        {{ exceptions.raise_compiler_error("the reporting date (var 'as_of' or CSW_AS_OF) must be a date written YYYY-MM-DD, got '" ~ text ~ "'") }}
    {%- endif -%}
    cast('{{ text }}' as date)
{%- endmacro %}
