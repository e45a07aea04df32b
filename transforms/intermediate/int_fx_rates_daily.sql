-- One rate per (day, currency) into the reporting currency, for every day any
-- platform reports on: the seed's rate on that day, else the latest earlier one.
-- Seed rates are USD per unit; a cross rate goes through USD. A day with no rate at
-- or before it gets a null rate: the marts report it, they never treat it as zero.
with rates as (
    select
        cast(rate_date as date) as rate_date,
        upper(currency_code) as currency_code,
        usd_per_unit
    from seeds.fx_rates
),

reporting as (
    select upper(value) as reporting_currency
    from seeds.settings
    where key = 'reporting_currency'
),

needed as (
    select distinct date_day, currency_code
    from intermediate.int_spend_local_daily
),

latest_earlier as (
    select
        needed.date_day,
        needed.currency_code,
        max(rates.rate_date) as rate_date
    from needed
    left join rates
        on rates.currency_code = needed.currency_code
        and rates.rate_date <= needed.date_day
    group by needed.date_day, needed.currency_code
),

reporting_latest_earlier as (
    select
        needed.date_day,
        max(rates.rate_date) as rate_date
    from (select distinct date_day from needed) as needed
    cross join reporting
    left join rates
        on rates.currency_code = reporting.reporting_currency
        and rates.rate_date <= needed.date_day
    group by needed.date_day
),

final as (
    select
        latest_earlier.date_day,
        latest_earlier.currency_code,
        reporting.reporting_currency,
        case
            when latest_earlier.currency_code = reporting.reporting_currency then cast(1 as decimal(18, 8))
            else cast(local_rate.usd_per_unit / reporting_rate.usd_per_unit as decimal(18, 8))
        end as fx_rate
    from latest_earlier
    cross join reporting
    left join reporting_latest_earlier
        on reporting_latest_earlier.date_day = latest_earlier.date_day
    left join rates as local_rate
        on local_rate.currency_code = latest_earlier.currency_code
        and local_rate.rate_date = latest_earlier.rate_date
    left join rates as reporting_rate
        on reporting_rate.currency_code = reporting.reporting_currency
        and reporting_rate.rate_date = reporting_latest_earlier.rate_date
)

select * from final
