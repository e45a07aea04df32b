-- Marin Social daily figures per campaign, on the account's own calendar day.
with source as (
    select * from {{ raw_table('marin_social', 'campaign_stats_daily') }}
),

renamed as (
    select
        "date" as date_day,
        cast(campaign_id as varchar) as campaign_id,
        cast(client_id as varchar) as media_plan_id,
        cast(account_id as varchar) as account_id,
        coalesce(impression, 0) as impressions,
        coalesce(click, 0) as clicks,
        -- spent and income are in the account's currency (contract).
        coalesce(spent, 0) as spend_local,
        upper(currency) as currency_code,
        timezone as account_timezone,
        -- Summed at extraction from the main_metrics named in the source's
        -- CONVERSION_METRICS setting (contract: number = count, amount = value).
        coalesce(conversions, 0) as conversions,
        coalesce(conversions_value, 0) as conversions_value_local
    from source
)

select * from renamed
