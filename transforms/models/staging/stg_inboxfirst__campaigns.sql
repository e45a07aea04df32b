-- InboxFirst email sends with their latest stat summary (raw: merged on id).
with source as (
    select * from {{ raw_table('inboxfirst', 'campaigns') }}
),

renamed as (
    select
        cast(id as varchar) as campaign_id,
        cast(mailing_list_id as varchar) as account_id,
        mailing_list_name as account_name,
        name as campaign_name,
        dispatch__started_at as started_at,
        dispatch__finished_at as finished_at,
        dispatch__state as dispatch_state,
        coalesce(stat_summary__messages_sent, 0) as messages_sent,
        coalesce(stat_summary__accepted, 0) as messages_delivered,
        coalesce(stat_summary__opens_unique, 0) as opens_unique,
        coalesce(stat_summary__clicks_unique, 0) as clicks_unique,
        coalesce(stat_summary__clicks_total, 0) as clicks_total,
        coalesce(stat_summary__unsubs_unique, 0) as unsubscribes_unique,
        coalesce(stat_summary__bounces_unique, 0) as bounces_unique
    from source
    -- Drafts never started: no send date, no figures.
    where dispatch__started_at is not null
)

select * from renamed
