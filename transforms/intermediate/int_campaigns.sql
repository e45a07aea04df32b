-- One row per campaign on every platform, with its name and its account's name:
-- the dimension the marts label their figures with.
with marin_social as (
    select
        'marin_social' as platform,
        campaigns.account_id,
        accounts.account_name,
        campaigns.campaign_id,
        campaigns.campaign_name
    from staging.stg_marin_social__campaigns as campaigns
    left join staging.stg_marin_social__accounts as accounts
        on accounts.account_id = campaigns.account_id
),

listenloop as (
    select
        'listenloop' as platform,
        account_id,
        -- The API names no organization: the id stands in.
        cast(null as varchar) as account_name,
        campaign_id,
        campaign_name
    from staging.stg_listenloop__campaigns
),

inboxfirst as (
    select
        'inboxfirst' as platform,
        account_id,
        account_name,
        campaign_id,
        campaign_name
    from staging.stg_inboxfirst__campaigns
),

retreaver as (
    select
        'retreaver' as platform,
        -- Campaigns do not name their company; the calls do (account_id there).
        cast(null as varchar) as account_id,
        cast(null as varchar) as account_name,
        retreaver_campaign_id as campaign_id,
        retreaver_campaign_name as campaign_name
    from staging.stg_retreaver__campaigns
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
