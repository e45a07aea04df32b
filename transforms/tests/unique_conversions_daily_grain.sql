-- marts.conversions_daily: one row per date_day, platform, campaign_id, conversion_type.
select date_day, platform, campaign_id, conversion_type, count(*) as rows_per_key
from marts.conversions_daily
group by date_day, platform, campaign_id, conversion_type
having count(*) > 1
