-- marts.call_conversions: one row per call_uuid.
select call_uuid, count(*) as rows_per_key
from marts.call_conversions
group by call_uuid
having count(*) > 1
