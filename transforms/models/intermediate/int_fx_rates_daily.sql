-- One rate per (day, currency) into the reporting currency, for every day any
-- platform reports spend on: the rate on that day, else the latest earlier one.
--
-- Rates come from two places, both read as USD per unit (the seed's unit):
--   * the FX source (staging.stg_fx__rates: units per EUR, the ECB's quoting),
--     turned into USD per unit with the same day's USD rate: (USD per EUR) /
--     (units per EUR);
--   * seeds/fx_rates.csv (usd_per_unit), for overrides and offline use: a seed row
--     replaces the feed's rate of its own (day, currency), nothing else.
-- A cross rate goes through USD, each side at its own latest date. A day with no
-- rate at or before it gets a null rate: the marts report it, they never treat it
-- as zero. rate_date is the older of the two rates used (null when none is needed
-- or none exists), so transforms/tests/fx_rate_not_stale.sql can name stale rates.
with feed_quotes as (
    select * from {{ ref('stg_fx__rates') }}
),

feed as (
    select
        quotes.rate_date,
        quotes.currency_code,
        cast(usd.units_per_base / quotes.units_per_base as decimal(38, 18)) as usd_per_unit,
        'feed' as rate_source
    from feed_quotes as quotes
    inner join feed_quotes as usd
        on usd.rate_date = quotes.rate_date
        and usd.base_currency = quotes.base_currency
        and usd.currency_code = 'USD'
),

seed as (
    select
        cast(rate_date as date) as rate_date,
        upper(currency_code) as currency_code,
        cast(usd_per_unit as decimal(38, 18)) as usd_per_unit,
        'seed' as rate_source
    from {{ ref('fx_rates') }}
    where usd_per_unit is not null
),

rates as (
    select * from seed
    union all
    select feed.*
    from feed
    where not exists (
            select 1
            from seed
            where seed.rate_date = feed.rate_date
                and seed.currency_code = feed.currency_code
        )
),

reporting as (
    select upper(value) as reporting_currency
    from {{ ref('int_settings') }}
    where key = 'reporting_currency'
),

needed as (
    select distinct date_day, currency_code
    from {{ ref('int_spend_local_daily') }}
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

joined as (
    select
        latest_earlier.date_day,
        latest_earlier.currency_code,
        reporting.reporting_currency,
        latest_earlier.currency_code = reporting.reporting_currency as is_same_currency,
        local_rate.usd_per_unit as local_usd_per_unit,
        reporting_rate.usd_per_unit as reporting_usd_per_unit,
        local_rate.rate_date as local_rate_date,
        reporting_rate.rate_date as reporting_rate_date,
        local_rate.rate_source as local_rate_source,
        reporting_rate.rate_source as reporting_rate_source
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
),

final as (
    select
        date_day,
        currency_code,
        reporting_currency,
        case
            when is_same_currency then cast(1 as decimal(18, 8))
            else cast(local_usd_per_unit / reporting_usd_per_unit as decimal(18, 8))
        end as fx_rate,
        -- The rates behind fx_rate (null when no rate is needed or one side has none).
        case when not is_same_currency and local_usd_per_unit is not null and reporting_usd_per_unit is not null
                then least(local_rate_date, reporting_rate_date)
        end as rate_date,
        case when not is_same_currency and local_usd_per_unit is not null and reporting_usd_per_unit is not null
                then date_day - least(local_rate_date, reporting_rate_date)
        end as rate_age_days,
        case when not is_same_currency then local_rate_date end as local_rate_date,
        case when not is_same_currency then reporting_rate_date end as reporting_rate_date,
        -- 'feed', 'seed', or 'feed+seed' when each side came from another place.
        case
            when is_same_currency or local_rate_source is null or reporting_rate_source is null then null
            when local_rate_source = reporting_rate_source then local_rate_source
            else 'feed+seed'
        end as rate_source
    from joined
)

select * from final
