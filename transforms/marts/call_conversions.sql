-- marts.call_conversions: one row per Retreaver call that converted, with the ad
-- campaign it is attributed to (null when its utm_campaign names none).
with conversions as (
    select * from intermediate.int_call_conversions
),

final as (
    select
        call_uuid,
        occurred_at,
        date_day,
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
        attributed_platform is not null as is_attributed
    from conversions
)

select * from final
