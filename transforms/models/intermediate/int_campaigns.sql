-- One row per campaign on every platform, with its name and its account's name:
-- the dimension the marts label their figures with.
with marin_social as (
    select
        'marin_social' as platform,
        campaigns.account_id,
        accounts.account_name,
        campaigns.campaign_id,
        campaigns.campaign_name
    from {{ ref('stg_marin_social__campaigns') }} as campaigns
    left join {{ ref('stg_marin_social__accounts') }} as accounts
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
    from {{ ref('stg_listenloop__campaigns') }}
),

inboxfirst as (
    select
        'inboxfirst' as platform,
        account_id,
        account_name,
        campaign_id,
        campaign_name
    from {{ ref('stg_inboxfirst__campaigns') }}
),

-- The doc's campaign objects show only the customer id (cid); the calls carry both
-- it and the internal id the marts key Retreaver rows by.
retreaver_ids as (
    select
        retreaver_campaign_cid,
        min(retreaver_campaign_id) as retreaver_campaign_id
    from {{ ref('stg_retreaver__calls') }}
    where retreaver_campaign_cid is not null and retreaver_campaign_id is not null
    group by retreaver_campaign_cid
),

retreaver as (
    select
        'retreaver' as platform,
        -- Campaigns do not name their company; the calls do (account_id there).
        cast(null as varchar) as account_id,
        cast(null as varchar) as account_name,
        coalesce(campaigns.retreaver_campaign_id, retreaver_ids.retreaver_campaign_id) as campaign_id,
        campaigns.retreaver_campaign_name as campaign_name
    from {{ ref('stg_retreaver__campaigns') }} as campaigns
    left join retreaver_ids
        on retreaver_ids.retreaver_campaign_cid = campaigns.retreaver_campaign_cid
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
