-- ListenLoop lifetime counters and pricing as seen at each run (raw: append-only).
with source as (
    select * from {{ raw_table('listenloop', 'campaign_snapshots') }}
),

renamed as (
    select
        cast(campaign_id as varchar) as campaign_id,
        snapshot_at,
        -- The campaign's updated_at when read: its counters have not moved since.
        campaign_updated_at,
        bidding_strategy,
        -- Null counters mean "no delivery yet" (vendor doc example): zero, not unknown.
        coalesce(impressions_count, 0) as impressions_count,
        coalesce(clicks_count, 0) as clicks_count,
        -- Page views that met the campaign's conversion criteria: ListenLoop's conversions.
        coalesce(conversion_c_page_views_count, 0) as conversions_count,
        user_defined_cpm as cpm_bid,
        max_bid,
        -- The CPC price of the spend estimate (contract: max_bid is the max CPM bid).
        ecpc_target
    from source
)

select * from renamed
