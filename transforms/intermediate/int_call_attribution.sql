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

-- Each lookup keeps ONE (platform, campaign_id) per key: a utm value listed twice
-- in the map, or a name two campaigns share, resolves to the first by platform then
-- id, never to a mix of the two rows.
mapping as (
    select utm_key, platform, campaign_id
    from (
        select
            lower(trim(utm_campaign)) as utm_key,
            platform,
            cast(campaign_id as varchar) as campaign_id,
            row_number() over (partition by lower(trim(utm_campaign)) order by platform, campaign_id) as rank_in_key
        from seeds.campaign_map
    ) as ranked
    where rank_in_key = 1
),

by_id as (
    select utm_key, platform, campaign_id
    from (
        select
            campaign_id as utm_key,
            platform,
            campaign_id,
            row_number() over (partition by campaign_id order by platform) as rank_in_key
        from campaigns
    ) as ranked
    where rank_in_key = 1
),

by_name as (
    select utm_key, platform, campaign_id
    from (
        select
            lower(trim(campaign_name)) as utm_key,
            platform,
            campaign_id,
            row_number() over (partition by lower(trim(campaign_name)) order by platform, campaign_id) as rank_in_key
        from campaigns
    ) as ranked
    where rank_in_key = 1
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
