{#-
    Exact decimal arithmetic. DuckDB evaluates DECIMAL / DECIMAL as DOUBLE, which is not good
    enough for money, so every division in this project goes through these helpers: operands are
    turned into scaled HUGEINTs (exact), divided with round-half-away-from-zero integer arithmetic,
    and turned back into DECIMAL(38, scale). Casting a DECIMAL to a smaller scale in DuckDB also
    rounds half away from zero, so results agree with a plain `cast(... as decimal(18,4))`.
    Overflow raises an error instead of losing digits.
-#}

{#- expr * 10^scale as HUGEINT; expr must have at most `scale` decimals (else it is rounded). -#}
{% macro to_scaled_int(expr, scale) -%}
    cast(cast({{ expr }} as decimal(38, {{ scale }})) * {{ 10 ** scale }} as hugeint)
{%- endmacro %}

{#- A HUGEINT holding value * 10^scale, back as DECIMAL(38, scale). -#}
{% macro from_scaled_int(expr, scale) -%}
    (cast({{ expr }} as decimal(38, 0)) * cast({{ '0.' ~ ('0' * (scale - 1)) ~ '1' }} as decimal({{ scale + 1 }}, {{ scale }})))
{%- endmacro %}

{#- numerator / denominator for HUGEINTs, denominator > 0, rounded half away from zero. -#}
{% macro div_round_half_up(numerator, denominator) -%}
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
