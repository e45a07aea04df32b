-- Each Retreaver call with the ad campaign its utm_campaign names, if any.
-- Order of trust: the editable mapping (seeds/campaign_map.csv), then an exact
-- campaign id, then the campaign name ignoring case and surrounding spaces. Calls
-- that match nothing stay, as unattributed: nothing is dropped.
with calls as (
    select * from staging.stg_retreaver__calls
),

campaigns as (
    select * from intermediate.int_ad_campaigns
),

mapping as (
    select
        lower(trim(utm_campaign)) as utm_key,
        min(platform) as platform,
        min(campaign_id) as campaign_id
    from seeds.campaign_map
    group by lower(trim(utm_campaign))
),

by_id as (
    select
        campaign_id as utm_key,
        min(platform) as platform,
        min(campaign_id) as campaign_id
    from campaigns
    group by campaign_id
),

by_name as (
    select
        lower(trim(campaign_name)) as utm_key,
        min(platform) as platform,
        min(campaign_id) as campaign_id
    from campaigns
    group by lower(trim(campaign_name))
),

matched as (
    select
        calls.*,
        coalesce(mapping.platform, by_id.platform, by_name.platform) as attributed_platform,
        coalesce(mapping.campaign_id, by_id.campaign_id, by_name.campaign_id) as attributed_campaign_id,
        case
            when mapping.campaign_id is not null then 'campaign_map'
            when by_id.campaign_id is not null then 'campaign_id'
            when by_name.campaign_id is not null then 'campaign_name'
            else 'unattributed'
        end as attribution_method
    from calls
    left join mapping on mapping.utm_key = lower(trim(calls.utm_campaign))
    left join by_id on by_id.utm_key = trim(calls.utm_campaign)
    left join by_name on by_name.utm_key = lower(trim(calls.utm_campaign))
)

select * from matched
