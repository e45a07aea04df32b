-- marts.call_conversions: no key column is null.
select *
from marts.call_conversions
where call_uuid is null
