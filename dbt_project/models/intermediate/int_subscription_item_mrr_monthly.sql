-- MRR of every subscription item version in force at the end of each month, in its own currency
-- and in USD, from the first month anything is in force through the reporting month.
--
-- Month M is measured on its last day; the reporting month (the month of var as_of) is measured
-- on as_of itself, since nothing after the reporting date may change a result as of that date.
-- Monthly amount = amount_per_interval / months_in_interval (interval_count months for `month`,
-- 12 * interval_count for `year`), converted with M's fx_rates row (USD is 1).
-- Precision: exact decimal arithmetic, the division rounded half away from zero to 12 decimals
-- (DECIMAL(38,12)); accounts are rounded to 4 decimals in int_account_mrr_monthly.
-- A non-USD item with no fx_rates row for its month stops the build with an error naming every
-- missing currency and month: a missing rate must never turn into a wrong (or missing) number.
{%- set as_of = as_of_date() %}

with items as (

    select * from {{ ref('int_subscription_items_in_force') }}

),

fx_rates as (

    select * from {{ ref('stg_billing__fx_rates') }}

),

bounds as (

    select
        min({{ month_start('in_force_from') }}) as first_month,
        {{ month_start(as_of) }}                as reporting_month
    from items
    where in_force_from <= {{ as_of }}

),

months as (

    select
        {{ month_series('first_month', 'reporting_month') }} as month
    from bounds

),

measurement_days as (

    select
        month,
        least({{ month_end('month') }}, {{ as_of }}) as measured_on
    from months

),

in_force as (

    select
        measurement_days.month,
        measurement_days.measured_on,
        items.*
    from measurement_days
    inner join items
        on  items.in_force_from <= measurement_days.measured_on
        and (items.in_force_until is null or measurement_days.measured_on < items.in_force_until)

),

with_rates as (

    select
        in_force.*,
        case
            when in_force.currency = 'USD' then cast(1 as decimal(18, 8))
            else fx_rates.rate_to_usd
        end as fx_rate_to_usd
    from in_force
    left join fx_rates
        on  fx_rates.currency = in_force.currency
        and fx_rates.month = in_force.month

),

missing_rates as (

    select
        {{ sorted_distinct_join(
            "'currency ' || currency || ' in month ' || " ~ year_month_text('month'), "'; '"
        ) }} as missing
    from with_rates
    where fx_rate_to_usd is null

),

checked as (

    select
        with_rates.item_id,
        with_rates.valid_from,
        with_rates.month,
        with_rates.measured_on,
        with_rates.subscription_id,
        with_rates.billing_customer_id,
        with_rates.account_id,
        with_rates.currency,
        with_rates.amount_per_interval,
        with_rates.months_in_interval,
        case
            when with_rates.fx_rate_to_usd is null then {{ raise_error(
                "'Missing FX rate: fx_rates has no row for ' || missing_rates.missing
                || ', needed to convert MRR to USD. Load the rates and rebuild.'"
            ) }}
            else with_rates.fx_rate_to_usd
        end as fx_rate_to_usd
    from with_rates
    cross join missing_rates

),

final as (

    select
        item_id,
        valid_from,
        month,
        measured_on,
        subscription_id,
        billing_customer_id,
        account_id,
        currency,
        amount_per_interval,
        months_in_interval,
        fx_rate_to_usd,
        {{ from_scaled_int(
            div_round_half_up(
                to_scaled_int('amount_per_interval', 10) ~ ' * 100',
                'months_in_interval',
                denominator_digits=10
            ),
            12
        ) }} as mrr_local,
        {{ from_scaled_int(
            div_round_half_up(
                to_scaled_int('amount_per_interval', 10) ~ ' * ' ~ to_scaled_int('fx_rate_to_usd', 8),
                to_scaled_int('months_in_interval', 0) ~ ' * 1000000',
                denominator_digits=10
            ),
            12
        ) }} as mrr_usd
    from checked

)

select * from final
