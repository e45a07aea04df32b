-- marts.spend_daily: one row per date_day, platform, account_id, campaign_id.
select date_day, platform, account_id, campaign_id, count(*) as rows_per_key
from marts.spend_daily
group by date_day, platform, account_id, campaign_id
having count(*) > 1
