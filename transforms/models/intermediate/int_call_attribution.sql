-- Each Retreaver call with the campaign its tags name, if exactly one.
-- utm_source picks the platform (seeds/utm_sources.csv; a source not listed there,
-- or none, leaves every platform open), then utm_campaign is matched on that
-- platform: first an exact campaign id, then the campaign name ignoring case and
-- surrounding spaces. seeds/campaign_map.csv overrides both, whatever the source.
-- The first of those levels that finds anything decides; if it finds more than one
-- campaign the call is 'ambiguous' and stays unattributed (with the number of
-- candidates): picking one would be arbitrary. Nothing is dropped.
with calls as (
    select * from {{ ref('stg_retreaver__calls') }}
),

campaigns as (
    select * from {{ ref('int_attributable_campaigns') }}
),

source_platforms as (
    select distinct lower(trim(utm_source)) as source_key, lower(trim(platform)) as platform
    from {{ ref('utm_sources') }}
),

mapping as (
    select distinct
        lower(trim(utm_campaign)) as utm_key,
        lower(trim(platform)) as platform,
        cast(campaign_id as varchar) as campaign_id
    from {{ ref('campaign_map') }}
),

call_keys as (
    select
        call_uuid,
        trim(utm_campaign) as utm_id,
        lower(trim(utm_campaign)) as utm_key,
        lower(trim(utm_source)) as source_key
    from calls
    where utm_campaign is not null
),

-- The platforms each call may be attributed to.
call_platforms as (
    select call_keys.call_uuid, campaigns.platform
    from call_keys
    cross join (select distinct platform from campaigns) as campaigns
    where campaigns.platform in (
            select source_platforms.platform from source_platforms
            where source_platforms.source_key = call_keys.source_key
        )
        or not exists (
            select 1 from source_platforms
            where source_platforms.source_key = call_keys.source_key
        )
),

candidates as (
    select call_keys.call_uuid, 1 as match_level, 'campaign_map' as attribution_method, mapping.platform, mapping.campaign_id
    from call_keys
    inner join mapping
        on mapping.utm_key = call_keys.utm_key
    union all
    select call_keys.call_uuid, 2, 'campaign_id', campaigns.platform, campaigns.campaign_id
    from call_keys
    inner join campaigns
        on campaigns.campaign_id = call_keys.utm_id
    inner join call_platforms
        on call_platforms.call_uuid = call_keys.call_uuid
        and call_platforms.platform = campaigns.platform
    union all
    select call_keys.call_uuid, 3, 'campaign_name', campaigns.platform, campaigns.campaign_id
    from call_keys
    inner join campaigns
        on lower(trim(campaigns.campaign_name)) = call_keys.utm_key
    inner join call_platforms
        on call_platforms.call_uuid = call_keys.call_uuid
        and call_platforms.platform = campaigns.platform
),

deciding as (
    select distinct candidates.call_uuid, candidates.attribution_method, candidates.platform, candidates.campaign_id
    from candidates
    inner join (
        select levels.call_uuid, min(levels.match_level) as match_level
        from candidates as levels
        group by levels.call_uuid
    ) as first_level
        on first_level.call_uuid = candidates.call_uuid
        and first_level.match_level = candidates.match_level
),

resolved as (
    select
        call_uuid,
        count(*) as candidate_campaigns,
        max(attribution_method) as attribution_method,
        -- min() only ever sees one row here: with more, the call is ambiguous.
        case when count(*) = 1 then min(platform) end as attributed_platform,
        case when count(*) = 1 then min(campaign_id) end as attributed_campaign_id
    from deciding
    group by call_uuid
),

final as (
    select
        calls.*,
        resolved.attributed_platform,
        resolved.attributed_campaign_id,
        case
            when resolved.candidate_campaigns > 1 then 'ambiguous'
            when resolved.candidate_campaigns = 1 then resolved.attribution_method
            else 'unattributed'
        end as attribution_method,
        cast(coalesce(resolved.candidate_campaigns, 0) as bigint) as candidate_campaigns
    from calls
    left join resolved
        on resolved.call_uuid = calls.call_uuid
)

-- Every column of the staged call passes through (calls.*).
select * from final  -- noqa: AM04
