-- Marin Social ad accounts: currency and timezone of everything reported under them.
with source as (
    select * from {{ raw_table('marin_social', 'accounts') }}
),

renamed as (
    select
        cast(id as varchar) as account_id,
        name as account_name,
        upper(currency) as currency_code,
        timezone as account_timezone,
        coalesce(active, false) as is_active
    from source
)

select * from renamed
