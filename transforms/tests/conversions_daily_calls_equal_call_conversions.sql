-- Every converted call is counted once in marts.conversions_daily (phone_call rows):
-- per row, the count and value equal the calls of marts.call_conversions it owns.
with owned as (
    select
        date_day,
        coalesce(attributed_platform, 'retreaver') as platform,
        coalesce(attributed_campaign_id, retreaver_campaign_id) as campaign_id,
        count(*) as conversions,
        case when count(revenue) = count(*) then sum(revenue) end as conversions_value
    from {{ ref('call_conversions') }}
    group by date_day, coalesce(attributed_platform, 'retreaver'), coalesce(attributed_campaign_id, retreaver_campaign_id)
),

daily as (
    select date_day, platform, campaign_id, conversions, conversions_value
    from {{ ref('conversions_daily') }}
    where conversion_type = 'phone_call'
),

final as (
    select
        coalesce(owned.date_day, daily.date_day) as date_day,
        coalesce(owned.platform, daily.platform) as platform,
        coalesce(owned.campaign_id, daily.campaign_id) as campaign_id,
        owned.conversions as expected_conversions,
        daily.conversions as actual_conversions,
        owned.conversions_value as expected_conversions_value,
        daily.conversions_value as actual_conversions_value
    from owned
    full outer join daily
        on daily.date_day = owned.date_day
        and daily.platform = owned.platform
        and daily.campaign_id = owned.campaign_id
)

select *
from final
where expected_conversions is distinct from actual_conversions
    or expected_conversions_value is distinct from actual_conversions_value
