-- marts.spend_daily: one row per date_day, platform, account_id, campaign_id.
-- Spend in the reporting currency; spend_local in the platform's own currency.
-- fx_rate is null (and so is spend) when no rate exists at or before the day: a
-- gap in the rates shows up here and in marts.reconciliation, never as 0. spend
-- is also null where the platform's cost is unknown (email without a configured cost).
-- date_day is a day of date_day_timezone (Marin Social: the account's zone).
with spend as (
    select * from {{ ref('int_spend_local_daily') }}
),

fx as (
    select * from {{ ref('int_fx_rates_daily') }}
),

campaigns as (
    select * from {{ ref('int_campaigns') }}
),

aggregated as (
    select
        date_day,
        platform,
        channel,
        account_id,
        campaign_id,
        currency_code,
        date_day_timezone,
        sum(impressions) as impressions,
        sum(clicks) as clicks,
        -- Unknown anywhere in the group is unknown in total.
        case when count(spend_local) = count(*) then sum(spend_local) end as spend_local,
        bool_or(is_spend_estimated) as is_spend_estimated,
        bool_or(is_estimated) as is_estimated
    from spend
    group by date_day, platform, channel, account_id, campaign_id, currency_code, date_day_timezone
),

final as (
    select
        aggregated.date_day,
        aggregated.platform,
        aggregated.channel,
        aggregated.account_id,
        campaigns.account_name,
        aggregated.campaign_id,
        campaigns.campaign_name,
        cast(aggregated.impressions as bigint) as impressions,
        cast(aggregated.clicks as bigint) as clicks,
        cast(aggregated.spend_local * fx.fx_rate as decimal(18, 4)) as spend,
        -- Kept at the source's precision, so it ties out exactly with the platforms.
        cast(aggregated.spend_local as decimal(18, 6)) as spend_local,
        aggregated.currency_code,
        fx.fx_rate,
        aggregated.is_spend_estimated,
        aggregated.is_estimated,
        aggregated.date_day_timezone
    from aggregated
    left join fx
        on fx.date_day = aggregated.date_day
        and fx.currency_code = aggregated.currency_code
    left join campaigns
        on campaigns.platform = aggregated.platform
        and campaigns.campaign_id = aggregated.campaign_id
)

select * from final
