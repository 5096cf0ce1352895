-- CRM opportunities: latest version per opportunity_id. Rename and cast only.
with source as (

    select * from {{ source('crm', 'opportunities') }}

),

latest as (

    select *
    from source
    qualify row_number() over (
        partition by opportunity_id
        order by updated_at desc, _loaded_at desc, _source_file desc, _source_row desc
    ) = 1

),

renamed as (

    select
        cast(opportunity_id as string)   as opportunity_id,
        cast(account_id as string)       as account_id,
        cast(type as string)             as opportunity_type,
        cast(stage as string)            as stage,
        cast(amount as decimal(18,4))     as amount,
        cast(currency as string)         as currency,
        cast(close_date as date)          as close_date,
        cast(contract_start_date as date) as contract_start_date,
        cast(contract_end_date as date)   as contract_end_date,
        cast(updated_at as timestamp)     as updated_at
    from latest

)

select * from renamed
