-- Every total in marts.reconciliation ties out.
select check_name, platform, date_day, expected, actual, difference
from marts.reconciliation
where not is_ok
