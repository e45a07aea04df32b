-- marts.spend_daily: one row per date_day, platform, account_id, campaign_id.
-- Spend in the reporting currency; spend_local in the platform's own currency.
-- fx_rate is null (and so is spend) when no rate exists at or before the day: a
-- gap in seeds/fx_rates.csv shows up here and in marts.reconciliation, never as 0.
with spend as (
    select * from intermediate.int_spend_local_daily
),

fx as (
    select * from intermediate.int_fx_rates_daily
),

campaigns as (
    select * from intermediate.int_campaigns
),

aggregated as (
    select
        date_day,
        platform,
        channel,
        account_id,
        campaign_id,
        currency_code,
        source_timezone,
        sum(impressions) as impressions,
        sum(clicks) as clicks,
        sum(spend_local) as spend_local,
        bool_or(is_spend_estimated) as is_spend_estimated
    from spend
    group by date_day, platform, channel, account_id, campaign_id, currency_code, source_timezone
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
        aggregated.source_timezone
    from aggregated
    left join fx
        on fx.date_day = aggregated.date_day
        and fx.currency_code = aggregated.currency_code
    left join campaigns
        on campaigns.platform = aggregated.platform
        and campaigns.campaign_id = aggregated.campaign_id
)

select * from final
