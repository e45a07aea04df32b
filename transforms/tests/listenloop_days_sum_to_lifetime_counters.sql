-- Per ListenLoop campaign, its days in marts.spend_daily and marts.conversions_daily
-- add up to its latest lifetime counters, and its estimated spend to the spend of
-- every snapshot's growth at that snapshot's pricing: spreading over days neither
-- loses nor invents anything.
with snapshots as (
    select
        *,
        row_number() over (partition by campaign_id order by snapshot_at desc) as recency,
        coalesce(lag(impressions_count) over (partition by campaign_id order by snapshot_at), 0) as previous_impressions,
        coalesce(lag(clicks_count) over (partition by campaign_id order by snapshot_at), 0) as previous_clicks
    from {{ ref('stg_listenloop__campaign_snapshots') }}
),

campaigns as (
    select * from {{ ref('stg_listenloop__campaigns') }}
),

lifetime as (
    select
        snapshots.campaign_id,
        max(case when snapshots.recency = 1 then snapshots.impressions_count end) as impressions,
        max(case when snapshots.recency = 1 then snapshots.clicks_count end) as clicks,
        max(case when snapshots.recency = 1 then snapshots.conversions_count end) as conversions,
        sum(
            cast(
                case
                    when snapshots.bidding_strategy = 'CPC'
                        then (snapshots.clicks_count - snapshots.previous_clicks) * coalesce(snapshots.ecpc_target, campaigns.ecpc_target)
                    else (snapshots.impressions_count - snapshots.previous_impressions) * snapshots.cpm_bid / 1000
                end as decimal(18, 6)
            )
        ) as spend_local
    from snapshots
    left join campaigns
        on campaigns.campaign_id = snapshots.campaign_id
    group by snapshots.campaign_id
),

days as (
    select
        campaign_id,
        sum(impressions) as impressions,
        sum(clicks) as clicks,
        sum(spend_local) as spend_local
    from {{ ref('spend_daily') }}
    where platform = 'listenloop'
    group by campaign_id
),

conversion_days as (
    select campaign_id, sum(conversions) as conversions
    from {{ ref('conversions_daily') }}
    where platform = 'listenloop' and conversion_type = 'conversion_page_view'
    group by campaign_id
),

final as (
    select
        lifetime.campaign_id,
        lifetime.impressions as lifetime_impressions,
        coalesce(days.impressions, 0) as daily_impressions,
        lifetime.clicks as lifetime_clicks,
        coalesce(days.clicks, 0) as daily_clicks,
        lifetime.conversions as lifetime_conversions,
        coalesce(conversion_days.conversions, 0) as daily_conversions,
        lifetime.spend_local as lifetime_spend_local,
        days.spend_local as daily_spend_local
    from lifetime
    left join days
        on days.campaign_id = lifetime.campaign_id
    left join conversion_days
        on conversion_days.campaign_id = lifetime.campaign_id
)

select *
from final
where daily_impressions <> lifetime_impressions
    or daily_clicks <> lifetime_clicks
    or daily_conversions <> lifetime_conversions
    -- Days whose spend is unknown (no bid) leave both sides null or unequal.
    or coalesce(daily_spend_local, 0) <> coalesce(lifetime_spend_local, 0)
