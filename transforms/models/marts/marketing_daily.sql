-- marts.marketing_daily: the dashboard table, one row per date_day, platform, campaign_id.
-- Every figure is on exactly one row, so any column can be summed over any rows:
-- a converted call is on the row of the campaign it is attributed to, else on its
-- Retreaver campaign's row (whose spend, payout + call cost, stays there). date_day
-- is a day of date_day_timezone, the calendar of the row's platform.
-- Unknown stays null: spend without a rate or without a configured cost; ratios
-- wherever an input is unknown, or a denominator (or the spend of a cost) is 0.
with spend as (
    select
        date_day,
        platform,
        campaign_id,
        max(date_day_timezone) as date_day_timezone,
        sum(impressions) as impressions,
        sum(clicks) as clicks,
        case when count(spend) = count(*) then sum(spend) end as spend,
        bool_or(is_spend_estimated) as is_spend_estimated,
        bool_or(is_estimated) as is_estimated
    from {{ ref('spend_daily') }}
    group by date_day, platform, campaign_id
),

conversions as (
    select
        date_day,
        platform,
        campaign_id,
        max(date_day_timezone) as date_day_timezone,
        sum(case when conversion_type <> 'phone_call' then conversions else 0 end) as platform_conversions,
        -- ListenLoop page views carry no value at all (null by design): they add 0.
        -- Any other null (no rate) makes the total unknown.
        case
            when bool_or(conversion_type not in ('phone_call', 'conversion_page_view') and conversions_value is null) then null
            else sum(case when conversion_type <> 'phone_call' then coalesce(conversions_value, 0) else 0 end)
        end as platform_conversions_value,
        sum(case when conversion_type = 'phone_call' then conversions else 0 end) as calls,
        case
            when bool_or(conversion_type = 'phone_call' and conversions_value is null) then null
            else sum(case when conversion_type = 'phone_call' then conversions_value else 0 end)
        end as call_revenue
    from {{ ref('conversions_daily') }}
    group by date_day, platform, campaign_id
),

keys as (
    select date_day, platform, campaign_id from spend
    union
    select date_day, platform, campaign_id from conversions
),

joined as (
    select
        keys.date_day,
        keys.platform,
        keys.campaign_id,
        campaigns.campaign_name,
        case keys.platform
            when 'marin_social' then 'paid_social'
            when 'listenloop' then 'display'
            when 'inboxfirst' then 'email'
            when 'retreaver' then 'call_tracking'
        end as channel,
        coalesce(spend.date_day_timezone, conversions.date_day_timezone) as date_day_timezone,
        -- No spend row: nothing was bought that day (costs are booked on the day
        -- they are incurred), 0; an unknown spend stays null.
        case when spend.date_day is null then 0 else spend.spend end as spend,
        coalesce(spend.impressions, 0) as impressions,
        coalesce(spend.clicks, 0) as clicks,
        coalesce(conversions.platform_conversions, 0) as platform_conversions,
        case when conversions.date_day is null then 0 else conversions.platform_conversions_value end as platform_conversions_value,
        coalesce(conversions.calls, 0) as calls,
        case when conversions.date_day is null then 0 else conversions.call_revenue end as call_revenue,
        coalesce(spend.is_spend_estimated, false) as is_spend_estimated,
        coalesce(spend.is_estimated, false) as is_estimated
    from keys
    left join spend
        on spend.date_day = keys.date_day and spend.platform = keys.platform and spend.campaign_id = keys.campaign_id
    left join conversions
        on conversions.date_day = keys.date_day and conversions.platform = keys.platform and conversions.campaign_id = keys.campaign_id
    left join (select distinct platform, campaign_id, campaign_name from {{ ref('int_campaigns') }}) as campaigns
        on campaigns.platform = keys.platform and campaigns.campaign_id = keys.campaign_id
),

totals as (
    select
        *,
        platform_conversions + calls as conversions,
        platform_conversions_value + call_revenue as conversions_value
    from joined
),

final as (
    select
        date_day,
        platform,
        campaign_id,
        campaign_name,
        channel,
        date_day_timezone,
        cast(spend as decimal(18, 4)) as spend,
        cast(impressions as bigint) as impressions,
        cast(clicks as bigint) as clicks,
        cast(platform_conversions as bigint) as platform_conversions,
        cast(platform_conversions_value as decimal(18, 4)) as platform_conversions_value,
        cast(calls as bigint) as calls,
        cast(call_revenue as decimal(18, 4)) as call_revenue,
        cast(conversions as bigint) as conversions,
        cast(conversions_value as decimal(18, 4)) as conversions_value,
        is_spend_estimated,
        is_estimated,
        -- A correction day (clicks going down) has no meaningful rate.
        case when impressions > 0 and clicks >= 0 then cast(clicks as double precision) / impressions end as ctr,
        -- A cost per click or per conversion of 0 would claim they were free.
        -- The cast wraps the case: Postgres drops a numeric's precision from a case
        -- whose other branch is null.
        cast(case when spend > 0 and clicks > 0 then spend / clicks end as decimal(18, 4)) as cpc,
        cast(case when spend > 0 and conversions > 0 then spend / conversions end as decimal(18, 4)) as cpa,
        case when spend > 0 then cast(conversions_value as double precision) / cast(spend as double precision) end as roas
    from totals
)

select * from final
