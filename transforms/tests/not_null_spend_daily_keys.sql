-- marts.spend_daily: no key column is null.
select *
from marts.spend_daily
where date_day is null or platform is null or account_id is null or campaign_id is null
