-- marts.conversions_daily: one row per date_day, platform, campaign_id, conversion_type.
--   platform-reported: Marin Social's configured main_metrics ('main_metrics') and
--     ListenLoop's conversion page views ('conversion_page_view'), credited to the
--     campaign that reported them;
--   calls: Retreaver's converted calls ('phone_call'), each on the row that owns it
--     (int_call_conversions): the campaign it is attributed to, else its Retreaver
--     campaign with attributed_* null. Every converted call is on exactly one row.
-- conversions_value is in the reporting currency; date_day is a day of
-- date_day_timezone, the calendar of the row's platform.
with marin_social as (
    select
        stats.date_day,
        'marin_social' as platform,
        stats.campaign_id,
        'main_metrics' as conversion_type,
        max(stats.account_timezone) as date_day_timezone,
        sum(stats.conversions) as conversions,
        sum(stats.conversions_value_local * fx.fx_rate) as conversions_value,
        'marin_social' as attributed_platform,
        stats.campaign_id as attributed_campaign_id,
        'platform_reported' as attribution_method
    from {{ ref('stg_marin_social__campaign_stats_daily') }} as stats
    left join {{ ref('int_fx_rates_daily') }} as fx
        on fx.date_day = stats.date_day
        and fx.currency_code = stats.currency_code
    group by stats.date_day, stats.campaign_id
),

listenloop as (
    select
        date_day,
        'listenloop' as platform,
        campaign_id,
        'conversion_page_view' as conversion_type,
        max(date_day_timezone) as date_day_timezone,
        sum(conversions) as conversions,
        -- ListenLoop reports no conversion value.
        cast(null as decimal(18, 4)) as conversions_value,
        'listenloop' as attributed_platform,
        campaign_id as attributed_campaign_id,
        'platform_reported' as attribution_method
    from {{ ref('int_listenloop_campaign_daily') }}
    group by date_day, campaign_id
),

calls as (
    select
        date_day,
        owner_platform as platform,
        owner_campaign_id as campaign_id,
        'phone_call' as conversion_type,
        max(date_day_timezone) as date_day_timezone,
        count(*) as conversions,
        -- A call whose revenue could not be converted (no rate) makes the total unknown.
        case when count(revenue) = count(*) then sum(revenue) end as conversions_value,
        max(attributed_platform) as attributed_platform,
        max(attributed_campaign_id) as attributed_campaign_id,
        -- Calls on one row may have matched in different ways (by map, id or name,
        -- or not at all): then the row says so.
        case when count(distinct attribution_method) = 1 then max(attribution_method) else 'mixed' end as attribution_method
    from {{ ref('int_call_conversions') }}
    group by date_day, owner_platform, owner_campaign_id
),

unioned as (
    select * from marin_social
    union all
    select * from listenloop
    union all
    select * from calls
),

final as (
    select
        date_day,
        platform,
        campaign_id,
        conversion_type,
        date_day_timezone,
        cast(conversions as bigint) as conversions,
        cast(conversions_value as decimal(18, 4)) as conversions_value,
        attributed_platform,
        attributed_campaign_id,
        attribution_method
    from unioned
    -- A negative day (a ListenLoop correction) is kept: dropping it would break the sums.
    where conversions <> 0 or conversions_value <> 0
)

select * from final
