-- ListenLoop daily figures, rebuilt from lifetime counters (the API has nothing daily).
-- Each snapshot closes an interval: from the previous snapshot, or for the first
-- one from the campaign's start (start_date, else created_at; contract). A snapshot
-- holds the counters as of the campaign's updated_at (any change moves it), which
-- can be well before the run read them: that moment ends the interval. The growth
-- of each counter over an interval is spread over the calendar days it covers in
-- proportion to the time spent on each day, so a run after a gap of days, or the
-- first run of an old campaign, does not book weeks of delivery on one day. Whole
-- units: each day gets the growth up to its end, rounded down, minus that of the
-- day before, so the days of an interval add up to its growth exactly. A counter
-- that went down is a correction by the vendor: the negative delta is booked on the
-- day of the snapshot that saw it, whole. Hence the days of a campaign always add
-- up to its latest counters (data test listenloop_days_sum_to_lifetime_counters).
-- Spend is an estimate (contract): CPM strategies, impressions x CPM bid / 1000;
-- CPC, clicks x ecpc_target; at the pricing of the snapshot closing the interval.
with recursive settings as (
    select coalesce(max(case when key = 'reporting_timezone' then nullif(trim(value), '') end), 'UTC') as calendar_timezone
    from {{ ref('int_settings') }}
),

snapshots as (
    select * from {{ ref('stg_listenloop__campaign_snapshots') }}
),

campaigns as (
    select * from {{ ref('stg_listenloop__campaigns') }}
),

as_of as (
    select
        *,
        case
            when campaign_updated_at is not null and campaign_updated_at < snapshot_at then campaign_updated_at
            else snapshot_at
        end as counted_at
    from snapshots
),

with_previous as (
    select
        *,
        row_number() over by_campaign as snapshot_number,
        lag(counted_at) over by_campaign as previous_counted_at,
        lag(impressions_count) over by_campaign as previous_impressions,
        lag(clicks_count) over by_campaign as previous_clicks,
        lag(conversions_count) over by_campaign as previous_conversions
    from as_of
    window by_campaign as (partition by campaign_id order by snapshot_at)
),

intervals as (
    select
        snapshots.campaign_id,
        snapshots.snapshot_number,
        settings.calendar_timezone,
        snapshots.snapshot_number = 1 as is_first_snapshot,
        case
            -- A vendor clock going backwards leaves no time to spread over.
            when snapshots.snapshot_number > 1
                then
                    case when snapshots.previous_counted_at < snapshots.counted_at then snapshots.previous_counted_at end
            -- Before the first snapshot: the campaign's start, if it is earlier.
            when cast(campaigns.start_date as timestamp) at time zone settings.calendar_timezone < snapshots.counted_at
                then cast(campaigns.start_date as timestamp) at time zone settings.calendar_timezone
            when campaigns.created_at < snapshots.counted_at then campaigns.created_at
        end as starts_at,
        snapshots.counted_at as ends_at,
        snapshots.impressions_count - coalesce(snapshots.previous_impressions, 0) as impressions,
        snapshots.clicks_count - coalesce(snapshots.previous_clicks, 0) as clicks,
        snapshots.conversions_count - coalesce(snapshots.previous_conversions, 0) as conversions,
        snapshots.bidding_strategy,
        snapshots.cpm_bid,
        -- Snapshots taken before the field was read carry none: the campaign's own.
        coalesce(snapshots.ecpc_target, campaigns.ecpc_target) as ecpc_target
    from with_previous as snapshots
    cross join settings
    left join campaigns
        on campaigns.campaign_id = snapshots.campaign_id
),

bounded as (
    select
        *,
        cast(coalesce(starts_at, ends_at) at time zone calendar_timezone as date) as first_day,
        cast(ends_at at time zone calendar_timezone as date) as last_day,
        coalesce(extract(epoch from ends_at) - extract(epoch from starts_at), 0) as seconds
    from intervals
),

interval_days as (
    select campaign_id, snapshot_number, first_day as date_day
    from bounded
    union all
    select interval_days.campaign_id, interval_days.snapshot_number, cast(interval_days.date_day + 1 as date)
    from interval_days
    inner join bounded
        on bounded.campaign_id = interval_days.campaign_id
        and bounded.snapshot_number = interval_days.snapshot_number
    where interval_days.date_day < bounded.last_day
),

-- Seconds of the interval elapsed at the end of each day (all of it on its last day).
elapsed as (
    select
        bounded.*,
        interval_days.date_day,
        case
            when interval_days.date_day = bounded.last_day or bounded.seconds <= 0 then bounded.seconds
            else extract(epoch from cast(cast(interval_days.date_day + 1 as date) as timestamp) at time zone bounded.calendar_timezone)
                - extract(epoch from bounded.starts_at)
        end as seconds_at_day_end
    from bounded
    inner join interval_days
        on interval_days.campaign_id = bounded.campaign_id
        and interval_days.snapshot_number = bounded.snapshot_number
),

-- Each counter's growth up to the end of the day, in whole units; a negative
-- delta counts only at the snapshot.
cumulative as (
    select
        *,
        case
            when impressions < 0 then case when date_day = last_day then impressions else 0 end
            when date_day = last_day or seconds <= 0 then impressions
            -- Multiplied before dividing: whole days of whole seconds split exactly.
            else floor(impressions * seconds_at_day_end / seconds)
        end as impressions_to_date,
        case
            when clicks < 0 then case when date_day = last_day then clicks else 0 end
            when date_day = last_day or seconds <= 0 then clicks
            else floor(clicks * seconds_at_day_end / seconds)
        end as clicks_to_date,
        case
            when conversions < 0 then case when date_day = last_day then conversions else 0 end
            when date_day = last_day or seconds <= 0 then conversions
            else floor(conversions * seconds_at_day_end / seconds)
        end as conversions_to_date
    from elapsed
),

spread as (
    select
        campaign_id,
        date_day,
        calendar_timezone,
        bidding_strategy,
        cpm_bid,
        ecpc_target,
        -- The day's figures are not observed but spread: from before the first
        -- snapshot, or from a gap of at least one whole day without a snapshot.
        is_first_snapshot or last_day - first_day > 1 as is_estimated,
        cast(impressions_to_date - coalesce(lag(impressions_to_date) over by_interval, 0) as bigint) as impressions,
        cast(clicks_to_date - coalesce(lag(clicks_to_date) over by_interval, 0) as bigint) as clicks,
        cast(conversions_to_date - coalesce(lag(conversions_to_date) over by_interval, 0) as bigint) as conversions
    from cumulative
    window by_interval as (partition by campaign_id, snapshot_number order by date_day)
),

priced as (
    select
        *,
        -- An unknown bid is an unknown spend (null), except where nothing was bought.
        cast(
            case
                when bidding_strategy = 'CPC' then case when clicks = 0 then 0 else clicks * ecpc_target end
                when impressions = 0 then 0
                else impressions * cpm_bid / 1000
            end as decimal(18, 6)
        ) as spend_local
    from spread
),

final as (
    select
        date_day,
        campaign_id,
        max(calendar_timezone) as date_day_timezone,
        sum(impressions) as impressions,
        sum(clicks) as clicks,
        sum(conversions) as conversions,
        case when count(spend_local) = count(*) then sum(spend_local) end as spend_local,
        bool_or(is_estimated) as is_estimated
    from priced
    group by date_day, campaign_id
    having sum(impressions) <> 0 or sum(clicks) <> 0 or sum(conversions) <> 0
        or sum(spend_local) <> 0 or count(spend_local) < count(*)
)

select * from final
