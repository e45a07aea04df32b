-- The campaigns a call can be attributed to: paid media (Marin Social, ListenLoop)
-- and email sends (InboxFirst), each with the calendar its platform's days are in,
-- so a call credited to it is dated on that same calendar.
with campaigns as (
    select * from {{ ref('int_campaigns') }}
    where platform in ('marin_social', 'listenloop', 'inboxfirst')
),

accounts as (
    select * from {{ ref('stg_marin_social__accounts') }}
),

settings as (
    select coalesce(max(case when key = 'reporting_timezone' then nullif(trim(value), '') end), 'UTC') as calendar_timezone
    from {{ ref('int_settings') }}
),

final as (
    select distinct
        campaigns.platform,
        campaigns.campaign_id,
        campaigns.campaign_name,
        campaigns.account_id,
        case
            when campaigns.platform = 'marin_social' then coalesce(accounts.account_timezone, 'UTC')
            else settings.calendar_timezone
        end as date_day_timezone
    from campaigns
    cross join settings
    left join accounts
        on campaigns.platform = 'marin_social'
        and accounts.account_id = campaigns.account_id
)

select * from final
