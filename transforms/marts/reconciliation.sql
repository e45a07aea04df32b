-- marts.reconciliation: every total that must tie out, with both sides and the
-- difference. The data tests fail the build on any row with is_ok = false; the rows
-- stay here either way, so a mismatch is visible, never hidden.
with spend_by_platform as (
    select
        'spend_local: marts.spend_daily = intermediate' as check_name,
        mart.platform,
        cast(null as date) as date_day,
        cast(source.spend_local as decimal(38, 6)) as expected,
        cast(mart.spend_local as decimal(38, 6)) as actual
    from (
        select platform, sum(spend_local) as spend_local
        from marts.spend_daily
        group by platform
    ) as mart
    full outer join (
        select platform, sum(spend_local) as spend_local
        from intermediate.int_spend_local_daily
        group by platform
    ) as source
        on source.platform = mart.platform
),

missing_fx as (
    select
        'fx_rate: spend days without a rate' as check_name,
        platform,
        cast(null as date) as date_day,
        cast(0 as decimal(38, 6)) as expected,
        cast(sum(case when fx_rate is null then 1 else 0 end) as decimal(38, 6)) as actual
    from marts.spend_daily
    group by platform
),

converted_calls as (
    select
        'calls: marts.call_conversions = converted calls' as check_name,
        'retreaver' as platform,
        cast(null as date) as date_day,
        cast((select count(*) from staging.stg_retreaver__calls where is_converted) as decimal(38, 6)) as expected,
        cast((select count(*) from marts.call_conversions) as decimal(38, 6)) as actual
),

calls_per_day as (
    select
        date_day,
        count(*) as total_calls,
        sum(case when is_converted then 1 else 0 end) as converted_calls,
        sum(revenue) as revenue,
        sum(payout) as payout,
        sum(cost) as cost
    from staging.stg_retreaver__calls
    group by date_day
),

report_vs_calls as (
    select
        'retreaver report_daily ' || measure || ' = calls' as check_name,
        'retreaver' as platform,
        date_day,
        expected,
        actual
    from (
        select report.date_day, 'total_calls' as measure, cast(report.total_calls as decimal(38, 6)) as expected, cast(coalesce(calls.total_calls, 0) as decimal(38, 6)) as actual
        from staging.stg_retreaver__report_daily as report left join calls_per_day as calls on calls.date_day = report.date_day
        union all
        select report.date_day, 'converted', cast(report.converted_calls as decimal(38, 6)), cast(coalesce(calls.converted_calls, 0) as decimal(38, 6))
        from staging.stg_retreaver__report_daily as report left join calls_per_day as calls on calls.date_day = report.date_day
        union all
        select report.date_day, 'revenue', cast(report.revenue as decimal(38, 6)), cast(coalesce(calls.revenue, 0) as decimal(38, 6))
        from staging.stg_retreaver__report_daily as report left join calls_per_day as calls on calls.date_day = report.date_day
        union all
        select report.date_day, 'payout', cast(report.payout as decimal(38, 6)), cast(coalesce(calls.payout, 0) as decimal(38, 6))
        from staging.stg_retreaver__report_daily as report left join calls_per_day as calls on calls.date_day = report.date_day
        union all
        select report.date_day, 'cost', cast(report.cost as decimal(38, 6)), cast(coalesce(calls.cost, 0) as decimal(38, 6))
        from staging.stg_retreaver__report_daily as report left join calls_per_day as calls on calls.date_day = report.date_day
    ) as measures
),

marin_campaigns_vs_ads as (
    -- Each media plan's day, summed over its campaigns and over its ads: the
    -- platform's two levels must agree.
    select
        'marin_social spend_local: campaigns = ads, per media plan and day' as check_name,
        'marin_social' as platform,
        coalesce(campaigns.date_day, ads.date_day) as date_day,
        cast(ads.spend_local as decimal(38, 6)) as expected,
        cast(campaigns.spend_local as decimal(38, 6)) as actual
    from (
        select media_plan_id, date_day, sum(spend_local) as spend_local
        from staging.stg_marin_social__campaign_stats_daily
        group by media_plan_id, date_day
    ) as campaigns
    full outer join (
        select media_plan_id, date_day, sum(spend_local) as spend_local
        from staging.stg_marin_social__ad_stats_daily
        group by media_plan_id, date_day
    ) as ads
        on ads.media_plan_id = campaigns.media_plan_id
        and ads.date_day = campaigns.date_day
),

unioned as (
    select * from spend_by_platform
    union all
    select * from missing_fx
    union all
    select * from converted_calls
    union all
    select * from report_vs_calls
    union all
    select * from marin_campaigns_vs_ads
),

final as (
    select
        check_name,
        platform,
        date_day,
        expected,
        actual,
        coalesce(actual, 0) - coalesce(expected, 0) as difference,
        coalesce(actual, 0) = coalesce(expected, 0) and (expected is not null or actual is not null) as is_ok
    from unioned
)

select * from final
