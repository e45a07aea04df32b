"""InboxFirst constants (see docs/sources/inboxfirst.md)."""

from dlt.common.schema.typing import TColumnSchema

from sources._shared.schema import decimal_columns, timestamp_columns

# No default base URL: contract (api-docs/README.md, InboxFirst) says the base URL is
# the customer's own host, so SOURCES__INBOXFIRST__BASE_URL is required.
API_PREFIX = "ga/api/v2/"

# Contract: stats keep changing for days after a send; re-read details and link stats
# of campaigns whose send started within this many days (SOURCES__INBOXFIRST__WINDOW_DAYS).
DEFAULT_WINDOW_DAYS = 30

# First backfill when SOURCES__INBOXFIRST__START_DATE is not set: sends started in
# the last 90 days.
DEFAULT_START_DAYS_AGO = 90

# Doc (link_stats, "Pagination"): page starts at 0, per_page defaults to 100 and the
# maximum allowed is 500.
LINK_STATS_FIRST_PAGE = 0
LINK_STATS_PAGE_SIZE = 500

# Requests open at once (SOURCES__INBOXFIRST__MAX_CONCURRENT_REQUESTS, 1..32): each
# send's details and each send's link stats (all their pages, in order) are fetched
# side by side in dlt's extract worker pool. Assumption: the doc states no rate or
# concurrency limit (a 429 would still be retried, honouring Retry-After, and
# counted as `throttled`). 5 is also the size of dlt's extract pool
# (EXTRACT__WORKERS, default 5): more than that needs both raised. 1 reads one
# page at a time, as before.
MAX_CONCURRENT_REQUESTS = 5

# Timestamps of a campaign (details), after dlt flattens ``dispatch`` into columns.
TIMESTAMP_FIELDS = (
    "created_at",
    "updated_at",
    "dispatch__begins_at",
    "dispatch__started_at",
    "dispatch__finished_at",
)

# Doc: "autowinner_percentage ... returned as a string to prevent floating-point
# conversion errors" -> DECIMAL, never float.
DECIMAL_FIELDS = ("dispatch__autowinner_percentage",)

# Counters of ``stat_summary`` (doc, "stat_summary" field table) that the tests and
# the marts rely on; dlt flattens them into ``stat_summary__<name>`` columns.
STAT_COUNTERS = (
    "messages_sent",
    "accepted",
    "bounces_total",
    "bounces_unique",
    "opens_total",
    "opens_unique",
    "clicks_total",
    "clicks_unique",
    "clicks_unique_by_link",
    "unsubs_total",
    "unsubs_unique",
    "scomps_total",
    "scomps_unique",
)
LINK_COUNTERS = ("clicks_total", "clicks_unique", "clicks_unique_by_link")


# Every column stg_inboxfirst__campaigns reads, plus the other hints the resources
# carry, typed: a send whose ``stat_summary`` is null (doc) or a field the vendor
# omits still leaves the column in place (dlt creates none for an all-null field).
def _typed(data_type: str, *names: str) -> dict[str, TColumnSchema]:
    return {name: {"data_type": data_type} for name in names}  # type: ignore[misc]


TABLE_COLUMNS: dict[str, dict[str, TColumnSchema]] = {
    "campaigns": {
        **_typed("bigint", "id", "mailing_list_id"),
        **_typed("text", "mailing_list_name", "name", "dispatch__state"),
        **timestamp_columns(TIMESTAMP_FIELDS),
        **decimal_columns(DECIMAL_FIELDS),
        **_typed("bigint", *(f"stat_summary__{name}" for name in STAT_COUNTERS)),
    },
    "link_stats": {
        **_typed("bigint", "campaign_id", "link_id", *LINK_COUNTERS),
        **_typed("text", "url"),
    },
}
