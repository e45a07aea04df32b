-- The ad campaigns a call can be attributed to: the paid media platforms.
with campaigns as (
    select * from intermediate.int_campaigns
),

final as (
    select platform, campaign_id, campaign_name, account_id
    from campaigns
    where platform in ('marin_social', 'listenloop')
)

select * from final
