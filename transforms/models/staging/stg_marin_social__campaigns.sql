-- Marin Social campaigns (re-read every run, merged on id).
with source as (
    select * from {{ raw_table('marin_social', 'campaigns') }}
),

renamed as (
    select
        cast(id as varchar) as campaign_id,
        name as campaign_name,
        cast(account_id as varchar) as account_id,
        cast(media_plan_id as varchar) as media_plan_id,
        status as campaign_status,
        budget,
        daily_budget,
        coalesce(deleted, false) as is_deleted,
        coalesce(archived, false) as is_archived
    from source
)

select * from renamed
