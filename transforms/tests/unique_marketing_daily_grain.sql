-- marts.marketing_daily: one row per date_day, platform, campaign_id.
select date_day, platform, campaign_id, count(*) as rows_per_key
from marts.marketing_daily
group by date_day, platform, campaign_id
having count(*) > 1
