-- Spend and delivery per day, platform, account and campaign, in each platform's
-- own currency, before conversion: the union the spend mart is built from.
-- Calendar of date_day (date_day_timezone): Marin Social, the account's zone (its API
-- reports whole days there); every other platform, the reporting_timezone setting,
-- else UTC.
with settings as (
    select
        max(case when key = 'reporting_currency' then upper(value) end) as reporting_currency,
        coalesce(max(case when key = 'reporting_timezone' then nullif(trim(value), '') end), 'UTC') as calendar_timezone
    from {{ ref('int_settings') }}
),

-- Email has no media cost in its API: a cost exists only where the user put one in
-- seeds/platform_costs.csv. The row in force on a day is the latest valid_from at
-- or before it, per cost_basis.
email_costs as (
    select
        lower(trim(cost_basis)) as cost_basis,
        cost,
        upper(nullif(trim(currency_code), '')) as currency_code,
        coalesce(cast(valid_from as date), cast('1900-01-01' as date)) as valid_from
    from {{ ref('platform_costs') }}
    where lower(trim(platform)) = 'inboxfirst'
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
        false as is_estimated,
        stats.account_timezone as date_day_timezone
    from {{ ref('stg_marin_social__campaign_stats_daily') }} as stats
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
        daily.is_estimated,
        daily.date_day_timezone
    from {{ ref('int_listenloop_campaign_daily') }} as daily
    left join {{ ref('stg_listenloop__campaigns') }} as campaigns
        on campaigns.campaign_id = daily.campaign_id
),

sends as (
    select
        sends.*,
        cast(sends.started_at at time zone settings.calendar_timezone as date) as date_day,
        settings.calendar_timezone,
        settings.reporting_currency
    from {{ ref('stg_inboxfirst__campaigns') }} as sends
    cross join settings
),

-- The cost rows in force on each send's day, one per basis.
send_costs as (
    select
        sends.campaign_id,
        email_costs.cost_basis,
        email_costs.cost,
        email_costs.currency_code,
        row_number() over (partition by sends.campaign_id, email_costs.cost_basis order by email_costs.valid_from desc) as rank_in_basis
    from sends
    inner join email_costs
        on email_costs.valid_from <= sends.date_day
),

-- A monthly cost is shared by that month's sends in proportion to messages sent.
month_sends as (
    select
        extract(year from date_day) as send_year,
        extract(month from date_day) as send_month,
        sum(messages_sent) as messages_sent
    from sends
    group by extract(year from date_day), extract(month from date_day)
),

inboxfirst as (
    select
        sends.date_day,
        'inboxfirst' as platform,
        'email' as channel,
        sends.account_id,
        sends.campaign_id,
        sends.messages_delivered as impressions,
        sends.clicks_unique as clicks,
        -- Null unless a cost is configured: unknown is not free. With more than one
        -- basis in force (e.g. a monthly fee plus a price per thousand), they add up.
        cast(
            sum(
                case send_costs.cost_basis
                    when 'per_thousand_sent' then sends.messages_sent * send_costs.cost / 1000
                    when 'per_send' then send_costs.cost
                    when 'monthly' then send_costs.cost * sends.messages_sent / nullif(month_sends.messages_sent, 0)
                end
            ) as decimal(18, 6)
        ) as spend_local,
        coalesce(max(send_costs.currency_code), max(sends.reporting_currency)) as currency_code,
        true as is_spend_estimated,
        false as is_estimated,
        max(sends.calendar_timezone) as date_day_timezone
    from sends
    left join send_costs
        on send_costs.campaign_id = sends.campaign_id
        and send_costs.rank_in_basis = 1
        and send_costs.cost is not null
    left join month_sends
        on month_sends.send_year = extract(year from sends.date_day)
        and month_sends.send_month = extract(month from sends.date_day)
    group by sends.date_day, sends.account_id, sends.campaign_id, sends.messages_delivered, sends.clicks_unique
),

retreaver as (
    select
        cast(calls.occurred_at at time zone settings.calendar_timezone as date) as date_day,
        'retreaver' as platform,
        'call_tracking' as channel,
        calls.account_id,
        calls.retreaver_campaign_id as campaign_id,
        0 as impressions,
        0 as clicks,
        -- What calls cost: the payout owed to publishers plus the telephony cost.
        sum(calls.payout + calls.cost) as spend_local,
        -- Retreaver's docs show amounts without a currency; assumed USD.
        'USD' as currency_code,
        false as is_spend_estimated,
        false as is_estimated,
        max(settings.calendar_timezone) as date_day_timezone
    from {{ ref('stg_retreaver__calls') }} as calls
    cross join settings
    group by cast(calls.occurred_at at time zone settings.calendar_timezone as date), calls.account_id, calls.retreaver_campaign_id
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
