-- Every converted amount uses rates at most fx_max_rate_age_days old (setting,
-- default 7) on the day it converts. Older means the FX source stopped loading (or
-- the seed was not extended): the money is converted, but with an old rate. One
-- row per (day, currency), naming the currency, the day and the old rate.
with limits as (
    select coalesce(max(cast(value as integer)), 7) as max_age_days
    from {{ ref('int_settings') }}
    where key = 'fx_max_rate_age_days'
),

rates as (
    select * from {{ ref('int_fx_rates_daily') }}
),

final as (
    select
        (case when rates.local_rate_date <= rates.reporting_rate_date then rates.currency_code else rates.reporting_currency end)
        || ' rate of ' || cast(rates.rate_date as varchar)
        || ' converts ' || rates.currency_code || ' to ' || rates.reporting_currency
        || ' on ' || cast(rates.date_day as varchar)
        || ': ' || cast(rates.rate_age_days as varchar) || ' days old (limit '
        || cast(limits.max_age_days as varchar) || ', fx_max_rate_age_days)' as problem,
        rates.currency_code,
        rates.date_day,
        rates.rate_date,
        rates.rate_age_days
    from rates
    cross join limits
    where rates.rate_age_days > limits.max_age_days
)

select * from final
order by date_day, currency_code
