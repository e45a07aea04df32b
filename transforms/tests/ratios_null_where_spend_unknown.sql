-- marts.marketing_daily: no cost per click or per conversion, and no ROAS, where
-- the spend is unknown or zero (a CPA of 0 would claim the conversions were free).
select date_day, platform, campaign_id, spend, cpc, cpa, roas
from {{ ref('marketing_daily') }}
where (spend is null or spend <= 0)
    and (cpc is not null or cpa is not null or roas is not null)
