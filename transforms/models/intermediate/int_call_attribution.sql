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

-- Each call's two keys, read in one pass over the calls: its utm_campaign as written
-- (trimmed), matched exactly against campaign ids, and folded to lower case, matched
-- against the map and campaign names.
call_keys as (
    select
        call_uuid,
        lower(trim(utm_source)) as source_key,
        unnest(array[trim(utm_campaign), lower(trim(utm_campaign))]) as match_key,
        unnest(array[true, false]) as is_exact
    from calls
    where utm_campaign is not null
),

-- Every key that names a campaign, with its level: 1 the map ('campaign_map'), 2 the
-- campaign id ('campaign_id'), 3 its name ('campaign_name').
campaign_keys as (
    select utm_key as match_key, false as is_exact, 1 as match_level, platform, campaign_id, false as is_source_bound
    from mapping
    union all
    select campaigns.campaign_id as match_key, true, 2, campaigns.platform, campaigns.campaign_id, true
    from campaigns
    union all
    select lower(trim(campaigns.campaign_name)), false, 3, campaigns.platform, campaigns.campaign_id, true
    from campaigns
),

-- The platforms a call may be attributed to depend on its utm_source only: worked out
-- once per source (a handful of rows), not per call.
call_sources as (
    select distinct lower(trim(utm_source)) as source_key
    from calls
    where utm_campaign is not null
),

source_rules as (
    select call_sources.source_key, campaigns.platform
    from call_sources
    cross join (select distinct platform from campaigns) as campaigns
    where campaigns.platform in (
            select source_platforms.platform from source_platforms
            where source_platforms.source_key = call_sources.source_key
        )
        or not exists (
            select 1 from source_platforms
            where source_platforms.source_key = call_sources.source_key
        )
),

-- One pass over the calls joined to small tables only: the map overrides whatever the
-- source; ids and names only match on a platform the source allows.
candidates as (
    select call_keys.call_uuid, campaign_keys.match_level, campaign_keys.platform, campaign_keys.campaign_id
    from call_keys
    inner join campaign_keys
        on campaign_keys.match_key = call_keys.match_key
        and campaign_keys.is_exact = call_keys.is_exact
    left join source_rules
        on source_rules.source_key is not distinct from call_keys.source_key
        and source_rules.platform = campaign_keys.platform
    where not campaign_keys.is_source_bound or source_rules.platform is not null
),

-- The distinct campaigns each level found per call, then one row per call with every
-- level's count side by side: plain aggregates, which DuckDB spills to disk under its
-- memory cap (a self-join or a window over the candidates held them in memory).
level_campaigns as (
    select distinct call_uuid, match_level, platform, campaign_id
    from candidates
),

per_call as (
    select
        call_uuid,
        min(match_level) as first_level,
        count(case when match_level = 1 then 1 end) as level_1_campaigns,
        count(case when match_level = 2 then 1 end) as level_2_campaigns,
        count(case when match_level = 3 then 1 end) as level_3_campaigns,
        -- min() only matters with one candidate: with more, the call is ambiguous.
        min(case when match_level = 1 then platform end) as level_1_platform,
        min(case when match_level = 2 then platform end) as level_2_platform,
        min(case when match_level = 3 then platform end) as level_3_platform,
        min(case when match_level = 1 then campaign_id end) as level_1_campaign_id,
        min(case when match_level = 2 then campaign_id end) as level_2_campaign_id,
        min(case when match_level = 3 then campaign_id end) as level_3_campaign_id
    from level_campaigns
    group by call_uuid
),

-- The first level that found anything decides.
first_levels as (
    select
        call_uuid,
        case first_level when 1 then 'campaign_map' when 2 then 'campaign_id' else 'campaign_name' end as attribution_method,
        case first_level when 1 then level_1_campaigns when 2 then level_2_campaigns else level_3_campaigns end as candidate_campaigns,
        case first_level when 1 then level_1_platform when 2 then level_2_platform else level_3_platform end as platform,
        case first_level when 1 then level_1_campaign_id when 2 then level_2_campaign_id else level_3_campaign_id end as campaign_id
    from per_call
),

resolved as (
    select
        call_uuid,
        candidate_campaigns,
        attribution_method,
        case when candidate_campaigns = 1 then platform end as attributed_platform,
        case when candidate_campaigns = 1 then campaign_id end as attributed_campaign_id
    from first_levels
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
