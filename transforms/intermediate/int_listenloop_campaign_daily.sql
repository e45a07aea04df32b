-- ListenLoop has no daily figures: a day's figures are the growth of the lifetime
-- counters between successive snapshots, credited to the UTC day of the later one.
-- The first snapshot of a campaign carries everything up to it. A counter that goes
-- down (a reset) starts again from zero: that day gets the new count, never a
-- negative. While counters only grow (contract) the daily sums equal the latest
-- lifetime counters.
with snapshots as (
    select * from staging.stg_listenloop__campaign_snapshots
),

with_previous as (
    select
        *,
        lag(impressions_count) over by_campaign as previous_impressions,
        lag(clicks_count) over by_campaign as previous_clicks,
        lag(conversions_count) over by_campaign as previous_conversions
    from snapshots
    window by_campaign as (partition by campaign_id order by snapshot_at)
),

deltas as (
    select
        campaign_id,
        cast(snapshot_at at time zone 'UTC' as date) as date_day,  -- UTC, whatever the session's zone
        bidding_strategy,
        cpm_bid,
        max_bid,
        case
            when previous_impressions is null or impressions_count < previous_impressions then impressions_count
            else impressions_count - previous_impressions
        end as impressions,
        case
            when previous_clicks is null or clicks_count < previous_clicks then clicks_count
            else clicks_count - previous_clicks
        end as clicks,
        case
            when previous_conversions is null or conversions_count < previous_conversions then conversions_count
            else conversions_count - previous_conversions
        end as conversions
    from with_previous
),

priced as (
    select
        *,
        -- Spend is an estimate (contract): CPM strategies pay per thousand impressions
        -- at the CPM bid, CPC pays per click at max_bid, at the pricing in force at
        -- the snapshot.
        cast(
            case
                when bidding_strategy = 'CPC' then clicks * coalesce(max_bid, 0)
                else impressions * coalesce(cpm_bid, 0) / 1000
            end as decimal(18, 6)
        ) as spend_local
    from deltas
),

final as (
    select
        date_day,
        campaign_id,
        sum(impressions) as impressions,
        sum(clicks) as clicks,
        sum(conversions) as conversions,
        sum(spend_local) as spend_local
    from priced
    group by date_day, campaign_id
)

select * from final
