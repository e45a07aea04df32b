-- A table, not a view like the rest of this layer: two marts read it (call_conversions,
-- conversions_daily), and as a view each of them re-ran the attribution of every
-- call. Inlined into conversions_daily's union, that query ran out of a 160 MB cap at
-- scale 100; read from this table it builds under 64 MB (docs/benchmarks.md).
{{ config(materialized='table') }}

-- Converted calls with their attribution, the row that owns each of them, and money
-- in the reporting currency. A call attributed to a campaign belongs to that
-- campaign's row, dated on that platform's calendar (a Marin Social campaign's
-- account zone); any other call to its Retreaver campaign's row, on the
-- Retreaver calendar (reporting_timezone, else UTC).
with settings as (
    select coalesce(max(case when key = 'reporting_timezone' then nullif(trim(value), '') end), 'UTC') as calendar_timezone
    from {{ ref('int_settings') }}
),

calls as (
    select * from {{ ref('int_call_attribution') }}
    where is_converted
),

campaigns as (
    select * from {{ ref('int_attributable_campaigns') }}
),

fx as (
    select * from {{ ref('int_fx_rates_daily') }}
),

owned as (
    select
        calls.*,
        coalesce(calls.attributed_platform, 'retreaver') as owner_platform,
        coalesce(calls.attributed_campaign_id, calls.retreaver_campaign_id) as owner_campaign_id,
        coalesce(campaigns.date_day_timezone, settings.calendar_timezone) as date_day_timezone,
        -- The day on the Retreaver calendar, on which its spend rows (and rates) are.
        cast(calls.occurred_at at time zone settings.calendar_timezone as date) as call_day
    from calls
    cross join settings
    left join campaigns
        on campaigns.platform = calls.attributed_platform
        and campaigns.campaign_id = calls.attributed_campaign_id
),

final as (
    select
        owned.call_uuid,
        owned.occurred_at,
        cast(owned.occurred_at at time zone owned.date_day_timezone as date) as date_day,
        owned.date_day_timezone,
        owned.account_id,
        owned.retreaver_campaign_id,
        owned.retreaver_campaign_name,
        -- Retreaver amounts are assumed USD (its docs name no currency), converted at
        -- the rate of the call's own day.
        cast(owned.revenue * fx.fx_rate as decimal(18, 4)) as revenue,
        cast(owned.payout * fx.fx_rate as decimal(18, 4)) as payout,
        cast(owned.cost * fx.fx_rate as decimal(18, 4)) as cost,
        owned.revenue as revenue_local,
        'USD' as currency_code,
        fx.fx_rate,
        owned.utm_source,
        owned.utm_campaign,
        owned.attributed_platform,
        owned.attributed_campaign_id,
        owned.attribution_method,
        owned.candidate_campaigns,
        owned.owner_platform,
        owned.owner_campaign_id
    from owned
    left join fx
        on fx.date_day = owned.call_day
        and fx.currency_code = 'USD'
)

select * from final
