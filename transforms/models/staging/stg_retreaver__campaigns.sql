-- Retreaver campaigns (the call-tracking campaigns, not ad campaigns).
with source as (
    select * from {{ raw_table('retreaver', 'campaigns') }}
),

renamed as (
    select
        cast(id as varchar) as retreaver_campaign_id,
        cid as retreaver_campaign_cid,
        name as retreaver_campaign_name,
        created_at,
        updated_at
    from source
)

select * from renamed
