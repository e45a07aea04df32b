-- Spend and delivery per day, platform, account and campaign, in each platform's
-- own currency, before conversion: the union the spend mart is built from.
with settings as (
    select
        max(case when key = 'reporting_currency' then upper(value) end) as reporting_currency,
        max(case when key = 'email_cost_per_thousand' then cast(value as decimal(18, 6)) end) as email_cost_per_thousand
    from seeds.settings
),

marin_social as (
    select
        stats.date_day,
        'marin_social' as platform,
        'paid_social' as channel,
        stats.account_id,
        stats.campaign_id,
        stats.impressions,
        stats.clicks,
        stats.spend_local,
        stats.currency_code,
        false as is_spend_estimated,
        -- Marin reports days in the account's own timezone (contract).
        stats.account_timezone as source_timezone
    from staging.stg_marin_social__campaign_stats_daily as stats
),

listenloop as (
    select
        daily.date_day,
        'listenloop' as platform,
        'display' as channel,
        campaigns.account_id,
        daily.campaign_id,
        daily.impressions,
        daily.clicks,
        daily.spend_local,
        -- ListenLoop shows no currency anywhere; its money fields are assumed USD.
        'USD' as currency_code,
        true as is_spend_estimated,
        'UTC' as source_timezone
    from intermediate.int_listenloop_campaign_daily as daily
    left join staging.stg_listenloop__campaigns as campaigns
        on campaigns.campaign_id = daily.campaign_id
),

inboxfirst as (
    select
        cast(sends.started_at at time zone 'UTC' as date) as date_day,  -- UTC, whatever the session's zone
        'inboxfirst' as platform,
        'email' as channel,
        sends.account_id,
        sends.campaign_id,
        sends.messages_delivered as impressions,
        sends.clicks_unique as clicks,
        -- Email has no media cost in the API: an optional configured cost per
        -- thousand emails sent (default 0), in the reporting currency.
        cast(sends.messages_sent * coalesce(settings.email_cost_per_thousand, 0) / 1000 as decimal(18, 6)) as spend_local,
        settings.reporting_currency as currency_code,
        true as is_spend_estimated,
        'UTC' as source_timezone
    from staging.stg_inboxfirst__campaigns as sends
    cross join settings
),

retreaver as (
    select
        date_day,
        'retreaver' as platform,
        'call_tracking' as channel,
        account_id,
        retreaver_campaign_id as campaign_id,
        0 as impressions,
        0 as clicks,
        -- What calls cost: the payout owed to publishers plus the telephony cost.
        sum(payout + cost) as spend_local,
        -- Retreaver's docs show amounts without a currency; assumed USD.
        'USD' as currency_code,
        false as is_spend_estimated,
        'UTC' as source_timezone
    from staging.stg_retreaver__calls
    group by date_day, account_id, retreaver_campaign_id
),

final as (
    select * from marin_social
    union all
    select * from listenloop
    union all
    select * from inboxfirst
    union all
    select * from retreaver
)

select * from final
