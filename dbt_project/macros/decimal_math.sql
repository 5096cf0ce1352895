{#-
    Exact decimal arithmetic. DuckDB evaluates DECIMAL / DECIMAL as DOUBLE, which is not good
    enough for money, so every division in this project goes through these helpers: operands are
    turned into scaled HUGEINTs (exact), divided with round-half-away-from-zero integer arithmetic,
    and turned back into DECIMAL(38, scale). Casting a DECIMAL to a smaller scale in DuckDB also
    rounds half away from zero, so results agree with a plain `cast(... as decimal(18,4))`.
    Overflow raises an error instead of losing digits.

    Spark has no HUGEINT: the scaled integers are DECIMAL(38, 0), and the division is Spark's
    decimal division, rounded half away from zero. Spark sizes a decimal result from its operands'
    types, so the `spark__` versions cast the operands to sizes that keep every digit; the
    parameters `digits` name those sizes. dbt-spark turns ANSI mode off, in which an overflowing
    decimal becomes null instead of an error: `spark__div_round_half_up` raises the error itself.
-#}

{#- expr * 10^scale as HUGEINT; expr must have at most `scale` decimals (else it is rounded). -#}
{% macro to_scaled_int(expr, scale) -%}
    {{ return(adapter.dispatch('to_scaled_int')(expr, scale)) }}
{%- endmacro %}

{% macro default__to_scaled_int(expr, scale) -%}
    cast(cast({{ expr }} as decimal(38, {{ scale }})) * {{ 10 ** scale }} as hugeint)
{%- endmacro %}

{#- A HUGEINT holding value * 10^scale, back as DECIMAL(38, scale). -#}
{% macro from_scaled_int(expr, scale) -%}
    {{ return(adapter.dispatch('from_scaled_int')(expr, scale)) }}
{%- endmacro %}

{% macro default__from_scaled_int(expr, scale) -%}
    (cast({{ expr }} as decimal(38, 0)) * cast({{ '0.' ~ ('0' * (scale - 1)) ~ '1' }} as decimal({{ scale + 1 }}, {{ scale }})))
{%- endmacro %}

{#- numerator / denominator for HUGEINTs, denominator > 0, rounded half away from zero.
    Spark: the denominator must be below 10^denominator_digits and the numerator below
    10^(38 - denominator_digits). -#}
{% macro div_round_half_up(numerator, denominator, denominator_digits=17) -%}
    {{ return(adapter.dispatch('div_round_half_up')(numerator, denominator, denominator_digits)) }}
{%- endmacro %}

{% macro default__div_round_half_up(numerator, denominator, denominator_digits=17) -%}
    (sign({{ numerator }}) * ((2 * abs({{ numerator }}) + ({{ denominator }})) // (2 * ({{ denominator }}))))
{%- endmacro %}

{#- numerator / denominator for DECIMALs with at most `input_scale` decimals, as
    DECIMAL(38, scale) rounded half away from zero; null when the denominator is 0 or null. -#}
{% macro decimal_ratio(numerator, denominator, scale=6, input_scale=4) -%}
    case
        when ({{ denominator }}) is null or ({{ denominator }}) = 0 then null
        else {{ from_scaled_int(
            div_round_half_up(
                to_scaled_int(numerator, input_scale) ~ ' * ' ~ (10 ** scale),
                to_scaled_int(denominator, input_scale)
            ),
            scale
        ) }}
    end
{%- endmacro %}

{#- Spark: expr * 10^scale; the product of a DECIMAL(38, scale) and a literal keeps 6 decimals
    and 32 integer digits, enough for an integer. -#}
{% macro spark__to_scaled_int(expr, scale) -%}
    cast(cast({{ expr }} as decimal(38, {{ scale }})) * {{ 10 ** scale }} as decimal(38, 0))
{%- endmacro %}

{#- Spark: a DECIMAL(37 - scale, 0) times a DECIMAL(scale, scale) literal is a DECIMAL(38, scale),
    exact (a wider integer would make Spark drop decimals). -#}
{% macro spark__from_scaled_int(expr, scale) -%}
    (cast({{ expr }} as decimal({{ 37 - scale }}, 0)) * cast({{ '0.' ~ ('0' * (scale - 1)) ~ '1' }} as decimal({{ scale }}, {{ scale }})))
{%- endmacro %}

{#- Spark: with the numerator a DECIMAL(38 - k, 0) and the denominator a DECIMAL(k, 0), Spark's
    quotient is a DECIMAL(38, k) rounded half up (away from zero) at k decimals; rounding that to
    an integer is exact, because a quotient of integers with denominator d < 10^k that is not a
    half is at least 1/(2d) > 10^-k / 2 away from one. Null from an overflow stops the query. -#}
{% macro spark__div_round_half_up(numerator, denominator, denominator_digits=17) -%}
    {%- set k = denominator_digits -%}
    {%- set quotient -%}
        round(cast({{ numerator }} as decimal({{ 38 - k }}, 0)) / cast({{ denominator }} as decimal({{ k }}, 0)), 0)
    {%- endset -%}
    case
        when {{ quotient }} is null and ({{ numerator }}) is not null and ({{ denominator }}) is not null
            then cast({{ raise_error("'Decimal overflow in an exact division: the numerator needs more than " ~ (38 - k) ~ " digits or the denominator more than " ~ k ~ ' (macros/decimal_math.sql)' ~ "'") }} as decimal(38, 0))
        else cast({{ quotient }} as decimal(38, 0))
    end
{%- endmacro %}
