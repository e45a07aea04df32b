-- Retreaver calls (v2), one row per call (raw: merged on uuid, kept current by updated_at).
with source as (
    select * from {{ raw_table('retreaver', 'calls') }}
),

renamed as (
    select
        uuid as call_uuid,
        -- created_at is the moment the call came in: the vendor's own filter and
        -- report day use it, so the marts do too (UTC).
        created_at as occurred_at,
        -- The UTC day, whatever the session's time zone (a timestamptz cast to date
        -- uses the session's zone).
        cast(created_at at time zone 'UTC' as date) as date_day,
        updated_at,
        cast(company_id as varchar) as account_id,
        cast(campaign_id as varchar) as retreaver_campaign_id,
        cid as retreaver_campaign_cid,
        campaign_name as retreaver_campaign_name,
        cast(system_affiliate_id as varchar) as affiliate_id,
        affiliate_name,
        status as call_status,
        coalesce(converted, false) as is_converted,
        coalesce(connected, false) as is_connected,
        coalesce(duplicate, false) as is_duplicate,
        -- Revenue and payout are null until the call converts (vendor doc example).
        coalesce(revenue, 0) as revenue,
        coalesce(payout, 0) as payout,
        coalesce(total_cost, 0) as cost,
        total_duration as duration_seconds,
        nullif(trim(tag_utm_source), '') as utm_source,
        nullif(trim(tag_utm_campaign), '') as utm_campaign,
        lower(nullif(trim(tag_email), '')) as email
    from source
)

select * from renamed
