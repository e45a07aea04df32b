-- Daily reference rates from the FX source (the ECB's, through Frankfurter): how
-- many units of currency_code one unit of base_currency (EUR) buys on rate_date, a
-- TARGET business day. One row per (rate_date, currency_code); the base itself is
-- a row at 1. Absent (source not run) -> an empty stand-in: the seed alone converts.
with source as (
    select * from {{ raw_table('fx', 'rates') }}
),

renamed as (
    select
        cast(rate_date as date) as rate_date,
        upper(currency_code) as currency_code,
        upper(base_currency) as base_currency,
        cast(rate as decimal(18, 8)) as units_per_base
    from source
),

final as (
    -- A rate that is missing or not positive converts nothing (the source rejects
    -- them; this guards rows loaded by hand).
    select *
    from renamed
    where units_per_base > 0
)

select * from final
