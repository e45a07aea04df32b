-- marts.marketing_daily: the dashboard table, one row per date_day, platform, campaign_id.
-- Platform-reported conversions, calls credited to an ad campaign and a call
-- platform's own converted calls stay in separate columns: a call credited to a
-- Marin campaign appears as attributed_calls on the Marin row and in calls on its
-- Retreaver campaign's row, so never add the two.
with spend as (
    select
        date_day,
        platform,
        campaign_id,
        sum(impressions) as impressions,
        sum(clicks) as clicks,
        -- Fix: spend is null in spend_daily when no fx rate exists; keep it null here
        -- (sum() would skip it, coalesce() below made it 0): a missing rate is reported,
        -- never silently zero.
        case when count(spend) = count(*) then sum(spend) end as spend,
        bool_or(is_spend_estimated) as is_spend_estimated
    from marts.spend_daily
    group by date_day, platform, campaign_id
),

conversions as (
    select
        date_day,
        platform,
        campaign_id,
        sum(case when attribution_method = 'platform_reported' then conversions else 0 end) as platform_conversions,
        -- Fix: a value conversions_daily could not convert (no fx rate) is null there and
        -- stays null here instead of becoming 0. ListenLoop page views carry no value at
        -- all (null by design): those add 0.
        case
            when bool_or(attribution_method = 'platform_reported' and conversion_type <> 'conversion_page_view' and conversions_value is null) then null
            else sum(case when attribution_method = 'platform_reported' then coalesce(conversions_value, 0) else 0 end)
        end as platform_conversions_value,
        sum(case when conversion_type = 'phone_call' and platform <> 'retreaver' then conversions else 0 end) as attributed_calls,
        case
            when bool_or(conversion_type = 'phone_call' and platform <> 'retreaver' and conversions_value is null) then null
            else sum(case when conversion_type = 'phone_call' and platform <> 'retreaver' then conversions_value else 0 end)
        end as attributed_call_revenue
    from marts.conversions_daily
    group by date_day, platform, campaign_id
),

own_calls as (
    select
        date_day,
        'retreaver' as platform,
        retreaver_campaign_id as campaign_id,
        count(*) as calls,
        -- Fix: null (no fx rate) stays null, as above.
        case when count(revenue) = count(*) then sum(revenue) end as call_revenue
    from marts.call_conversions
    group by date_day, retreaver_campaign_id
),

keys as (
    select date_day, platform, campaign_id from spend
    union
    select date_day, platform, campaign_id from conversions
    union
    select date_day, platform, campaign_id from own_calls
),

joined as (
    select
        keys.date_day,
        keys.platform,
        keys.campaign_id,
        campaigns.campaign_name,
        -- Fix: 0 only where the key has no spend row at all; a null (unconvertible)
        -- spend or value stays null, and so do the ratios built on it.
        case when spend.date_day is null then 0 else spend.spend end as spend,
        coalesce(spend.impressions, 0) as impressions,
        coalesce(spend.clicks, 0) as clicks,
        coalesce(conversions.platform_conversions, 0) as platform_conversions,
        case when conversions.date_day is null then 0 else conversions.platform_conversions_value end as platform_conversions_value,
        coalesce(conversions.attributed_calls, 0) as attributed_calls,
        case when conversions.date_day is null then 0 else conversions.attributed_call_revenue end as attributed_call_revenue,
        coalesce(own_calls.calls, 0) as calls,
        case when own_calls.date_day is null then 0 else own_calls.call_revenue end as call_revenue,
        coalesce(spend.is_spend_estimated, false) as is_spend_estimated
    from keys
    left join spend
        on spend.date_day = keys.date_day and spend.platform = keys.platform and spend.campaign_id = keys.campaign_id
    left join conversions
        on conversions.date_day = keys.date_day and conversions.platform = keys.platform and conversions.campaign_id = keys.campaign_id
    left join own_calls
        on own_calls.date_day = keys.date_day and own_calls.platform = keys.platform and own_calls.campaign_id = keys.campaign_id
    left join intermediate.int_campaigns as campaigns
        on campaigns.platform = keys.platform and campaigns.campaign_id = keys.campaign_id
),

final as (
    select
        *,
        case platform
            when 'marin_social' then 'paid_social'
            when 'listenloop' then 'display'
            when 'inboxfirst' then 'email'
            when 'retreaver' then 'call_tracking'
        end as channel,
        -- Ratios are null, not an error, where the denominator is 0.
        cast(clicks as double) / nullif(impressions, 0) as ctr,
        cast(spend / nullif(clicks, 0) as decimal(18, 4)) as cpc,
        cast(spend / nullif(platform_conversions + attributed_calls + calls, 0) as decimal(18, 4)) as cpa,
        cast((platform_conversions_value + attributed_call_revenue + call_revenue) / nullif(spend, 0) as decimal(18, 4)) as roas
    from joined
)

select * from final
