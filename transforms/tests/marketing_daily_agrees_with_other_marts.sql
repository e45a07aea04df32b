-- marts.marketing_daily holds what the other marts hold, no more, no less: per
-- platform, its spend, impressions and clicks equal marts.spend_daily's and its
-- platform conversions (count and value) equal marts.conversions_daily's.
with dashboard as (
    select
        platform,
        sum(spend) as spend,
        count(*) - count(spend) as unknown_spend_rows,
        sum(impressions) as impressions,
        sum(clicks) as clicks,
        sum(platform_conversions) as platform_conversions,
        sum(platform_conversions_value) as platform_conversions_value
    from {{ ref('marketing_daily') }}
    group by platform
),

spend as (
    select
        platform,
        sum(spend) as spend,
        sum(impressions) as impressions,
        sum(clicks) as clicks
    from {{ ref('spend_daily') }}
    group by platform
),

-- Platform conversion values on dashboard rows whose value is known (a row with
-- an unconvertible value is null there, and skipped by the sum on both sides).
conversions as (
    select
        daily.platform,
        sum(daily.conversions) as platform_conversions,
        sum(case when dashboard.platform_conversions_value is not null then coalesce(daily.conversions_value, 0) end)
            as platform_conversions_value
    from {{ ref('conversions_daily') }} as daily
    left join {{ ref('marketing_daily') }} as dashboard
        on dashboard.date_day = daily.date_day
        and dashboard.platform = daily.platform
        and dashboard.campaign_id = daily.campaign_id
    where daily.conversion_type <> 'phone_call'
    group by daily.platform
),

-- Spend on dashboard rows with a known spend, likewise.
known_spend as (
    select spend.platform, sum(spend.spend) as spend
    from {{ ref('spend_daily') }} as spend
    inner join {{ ref('marketing_daily') }} as dashboard
        on dashboard.date_day = spend.date_day
        and dashboard.platform = spend.platform
        and dashboard.campaign_id = spend.campaign_id
    where dashboard.spend is not null
    group by spend.platform
),

final as (
    select
        coalesce(dashboard.platform, spend.platform, conversions.platform) as platform,
        dashboard.spend as dashboard_spend,
        known_spend.spend as spend_daily_spend,
        dashboard.impressions as dashboard_impressions,
        spend.impressions as spend_daily_impressions,
        dashboard.clicks as dashboard_clicks,
        spend.clicks as spend_daily_clicks,
        dashboard.platform_conversions as dashboard_platform_conversions,
        conversions.platform_conversions as conversions_daily_conversions,
        dashboard.platform_conversions_value as dashboard_platform_conversions_value,
        conversions.platform_conversions_value as conversions_daily_value
    from dashboard
    full outer join spend
        on spend.platform = dashboard.platform
    left join known_spend
        on known_spend.platform = coalesce(dashboard.platform, spend.platform)
    full outer join conversions
        on conversions.platform = coalesce(dashboard.platform, spend.platform)
)

select *
from final
where coalesce(dashboard_spend, 0) <> coalesce(spend_daily_spend, 0)
    or coalesce(dashboard_impressions, 0) <> coalesce(spend_daily_impressions, 0)
    or coalesce(dashboard_clicks, 0) <> coalesce(spend_daily_clicks, 0)
    or coalesce(dashboard_platform_conversions, 0) <> coalesce(conversions_daily_conversions, 0)
    or coalesce(dashboard_platform_conversions_value, 0) <> coalesce(conversions_daily_value, 0)
