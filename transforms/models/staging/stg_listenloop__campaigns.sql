-- ListenLoop campaigns, one row per campaign (raw: listenloop.campaigns, merged on id).
with source as (
    select * from {{ raw_table('listenloop', 'campaigns') }}
),

renamed as (
    select
        cast(id as varchar) as campaign_id,
        cast(organization_id as varchar) as account_id,
        name as campaign_name,
        user_defined_status as campaign_status,
        bidding_strategy,
        user_defined_cpm as cpm_bid,
        max_bid,
        ecpc_target,
        daily_budget,
        bw_lifetime_budget as lifetime_budget,
        -- May be null (doc example): the transforms then start at created_at.
        start_date,
        end_date,
        created_at,
        updated_at,
        archived_at,
        archived_at is not null as is_archived
    from source
)

select * from renamed
