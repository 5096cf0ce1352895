-- Monthly FX rates to USD: one row per currency + month (event table: deduplicated again defensively). Rename and cast only.
with source as (

    select * from {{ source('billing', 'fx_rates') }}

),

latest as (

    select *
    from source
    qualify row_number() over (
        partition by currency, month
        order by _loaded_at desc, _source_file desc, _source_row desc
    ) = 1

),

renamed as (

    select
        cast(currency as string)          as currency,
        cast(month as date)                as month,
        cast(rate_to_usd as decimal(18,8)) as rate_to_usd
    from latest

)

select * from renamed
