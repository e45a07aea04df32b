-- Every converted call is counted once in marts.marketing_daily, on the row that
-- owns it, with its revenue: per row, calls and call_revenue equal the calls of
-- marts.call_conversions dated on that row (which adds up to all of them).
with owned as (
    select
        date_day,
        coalesce(attributed_platform, 'retreaver') as platform,
        coalesce(attributed_campaign_id, retreaver_campaign_id) as campaign_id,
        count(*) as calls,
        case when count(revenue) = count(*) then sum(revenue) end as call_revenue
    from {{ ref('call_conversions') }}
    group by date_day, coalesce(attributed_platform, 'retreaver'), coalesce(attributed_campaign_id, retreaver_campaign_id)
),

dashboard as (
    select date_day, platform, campaign_id, calls, call_revenue
    from {{ ref('marketing_daily') }}
    where calls <> 0 or call_revenue is null or call_revenue <> 0
),

final as (
    select
        coalesce(owned.date_day, dashboard.date_day) as date_day,
        coalesce(owned.platform, dashboard.platform) as platform,
        coalesce(owned.campaign_id, dashboard.campaign_id) as campaign_id,
        owned.calls as expected_calls,
        dashboard.calls as actual_calls,
        owned.call_revenue as expected_call_revenue,
        dashboard.call_revenue as actual_call_revenue
    from owned
    full outer join dashboard
        on dashboard.date_day = owned.date_day
        and dashboard.platform = owned.platform
        and dashboard.campaign_id = owned.campaign_id
)

select *
from final
where expected_calls is distinct from actual_calls
    or expected_call_revenue is distinct from actual_call_revenue
