-- Marin Social daily figures per ad: an independent total to reconcile campaigns with.
with source as (
    select * from {{ raw_table('marin_social', 'ad_stats_daily') }}
),

renamed as (
    select
        "date" as date_day,
        cast(ad_id as varchar) as ad_id,
        cast(campaign_id as varchar) as campaign_id,
        cast(client_id as varchar) as media_plan_id,
        coalesce(impression, 0) as impressions,
        coalesce(click, 0) as clicks,
        coalesce(spent, 0) as spend_local
    from source
)

select * from renamed
