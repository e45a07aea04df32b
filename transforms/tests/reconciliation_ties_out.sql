-- Every total in marts.reconciliation ties out, or differs only where the source may
-- still restate it, within the tolerance (status 'pending').
select check_name, platform, date_day, expected, actual, difference, tolerance
from {{ ref('reconciliation') }}
where status = 'failed'
