-- marts.call_conversions: one row per Retreaver call that converted, with the
-- campaign it is attributed to (null when its tags name none, or more than one).
-- date_day is on the calendar of the marketing_daily row that owns the call
-- (date_day_timezone), so the call is counted on the same day there.
with conversions as (
    select * from {{ ref('int_call_conversions') }}
),

final as (
    select
        call_uuid,
        occurred_at,
        date_day,
        date_day_timezone,
        retreaver_campaign_id,
        retreaver_campaign_name,
        revenue,
        payout,
        cost,
        currency_code as source_currency_code,
        fx_rate,
        utm_source,
        utm_campaign,
        attributed_platform,
        attributed_campaign_id,
        attribution_method,
        candidate_campaigns,
        attributed_platform is not null as is_attributed
    from conversions
)

select * from final
