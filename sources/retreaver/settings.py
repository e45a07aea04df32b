"""Retreaver constants (see docs/sources/retreaver.md)."""

# The documented hosts; configuration (SOURCES__RETREAVER__BASE_URL and
# SOURCES__RETREAVER__CALLS_BASE_URL) overrides them. The v2 call log lives on its
# own host (doc "V2 - Get recent Calls": canary.retreaver.com).
DEFAULT_BASE_URL = "https://api.retreaver.com"
DEFAULT_CALLS_BASE_URL = "https://canary.retreaver.com"

# Doc "Paginated": 25 per page by default; contract: per_page up to 100 accepted.
PAGE_SIZE = 100
# Reports: per_page default 25 (contract), no documented cap; pages are counted
# with count_total, so any size works. 100 keeps the first backfill to a few pages.
REPORT_PAGE_SIZE = 100

# First backfill starts this many days back when START_DATE is not configured.
DEFAULT_START_DAYS_AGO = 90
# Re-read calls updated up to this many seconds before the newest updated_at of
# the previous run: covers vendor clock skew / late commits (see __init__.py).
DEFAULT_CALLS_LAG_SECONDS = 3600
# Report days re-read before the last loaded day. Calls convert up to ~3 days after
# they are made (contract: conversions set later), so a day's figures keep changing
# for 3 days; 4 covers that plus the UTC-day boundary.
DEFAULT_REPORT_LOOKBACK_DAYS = 4
# Doc "Reports": created_at_start/created_at_end less than 2 years apart.
REPORT_MAX_DAYS = 365

# v2 call money: revenue/payout/profit_net numbers (null until converted),
# charge_total/total_cost/profit_gross strings (doc "V2 - Get recent Calls").
CALL_MONEY_FIELDS = ("revenue", "payout", "postback_value", "charge_total", "total_cost", "profit_gross", "profit_net")
CALL_TIMESTAMP_FIELDS = ("start_time", "forwarded_time", "end_time", "conversions_determined_at", "updated_at", "created_at")
# Tags the transforms need, flattened into columns tag_<key>.
FLATTENED_TAGS = ("utm_campaign", "utm_source", "email")

CATALOGUE_TIMESTAMP_FIELDS = ("created_at", "updated_at")
TARGET_TIMESTAMP_FIELDS = ("created_at", "updated_at", "paused_at")

# Report rows (doc "Reports" examples): money figures arrive as floats.
REPORT_MONEY_FIELDS = ("revenue", "payout", "cost", "profit", "rescued_revenue", "epc", "cpc")
