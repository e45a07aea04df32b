-- Converted calls with their attribution and money in the reporting currency.
with calls as (
    select * from intermediate.int_call_attribution
    where is_converted
),

fx as (
    select * from intermediate.int_fx_rates_daily
),

final as (
    select
        calls.call_uuid,
        calls.occurred_at,
        calls.date_day,
        calls.account_id,
        calls.retreaver_campaign_id,
        calls.retreaver_campaign_name,
        -- Retreaver amounts are assumed USD (its docs name no currency).
        cast(calls.revenue * fx.fx_rate as decimal(18, 4)) as revenue,
        cast(calls.payout * fx.fx_rate as decimal(18, 4)) as payout,
        cast(calls.cost * fx.fx_rate as decimal(18, 4)) as cost,
        calls.revenue as revenue_local,
        'USD' as currency_code,
        fx.fx_rate,
        calls.utm_source,
        calls.utm_campaign,
        calls.attributed_platform,
        calls.attributed_campaign_id,
        calls.attribution_method
    from calls
    left join fx
        on fx.date_day = calls.date_day
        and fx.currency_code = 'USD'
)

select * from final
