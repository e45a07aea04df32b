-- marts.marketing_daily: no key column is null.
select *
from marts.marketing_daily
where date_day is null or platform is null or campaign_id is null
