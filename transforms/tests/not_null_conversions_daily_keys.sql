-- marts.conversions_daily: no key column is null.
select *
from marts.conversions_daily
where date_day is null or platform is null or campaign_id is null or conversion_type is null
