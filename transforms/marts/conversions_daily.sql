-- marts.conversions_daily: one row per date_day, platform, campaign_id, conversion_type.
--   platform-reported: Marin Social's configured main_metrics ('main_metrics') and
--     ListenLoop's conversion page views ('conversion_page_view'), credited to the
--     campaign that reported them;
--   calls: Retreaver's converted calls ('phone_call'). An attributed call is listed
--     under the ad campaign it is credited to (platform and campaign_id = the ad
--     campaign); an unattributed one under its Retreaver campaign, attributed_* null.
-- conversions_value is in the reporting currency.
with marin_social as (
    select
        stats.date_day,
        'marin_social' as platform,
        stats.campaign_id,
        'main_metrics' as conversion_type,
        sum(stats.conversions) as conversions,
        sum(stats.conversions_value_local * fx.fx_rate) as conversions_value,
        'marin_social' as attributed_platform,
        stats.campaign_id as attributed_campaign_id,
        'platform_reported' as attribution_method
    from staging.stg_marin_social__campaign_stats_daily as stats
    left join intermediate.int_fx_rates_daily as fx
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
        sum(conversions) as conversions,
        -- ListenLoop reports no conversion value.
        cast(null as decimal(18, 4)) as conversions_value,
        'listenloop' as attributed_platform,
        campaign_id as attributed_campaign_id,
        'platform_reported' as attribution_method
    from intermediate.int_listenloop_campaign_daily
    group by date_day, campaign_id
),

calls as (
    select
        date_day,
        coalesce(attributed_platform, 'retreaver') as platform,
        coalesce(attributed_campaign_id, retreaver_campaign_id) as campaign_id,
        'phone_call' as conversion_type,
        count(*) as conversions,
        sum(revenue) as conversions_value,
        max(attributed_platform) as attributed_platform,
        max(attributed_campaign_id) as attributed_campaign_id,
        -- Calls credited to one campaign on one day may have matched in different
        -- ways (by map, id or name): then the row says so.
        case when count(distinct attribution_method) = 1 then max(attribution_method) else 'mixed' end as attribution_method
    from intermediate.int_call_conversions
    group by
        date_day,
        coalesce(attributed_platform, 'retreaver'),
        coalesce(attributed_campaign_id, retreaver_campaign_id)
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
        cast(conversions as bigint) as conversions,
        cast(conversions_value as decimal(18, 4)) as conversions_value,
        attributed_platform,
        attributed_campaign_id,
        attribution_method
    from unioned
    where conversions <> 0 or conversions_value <> 0
)

select * from final
