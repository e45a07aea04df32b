"""ListenLoop constants (see docs/sources/listenloop.md)."""

from dlt.common.schema.typing import TColumnSchema

from sources._shared.schema import decimal_columns, timestamp_columns

# The documented host; configuration (SOURCES__LISTENLOOP__BASE_URL) overrides it.
DEFAULT_BASE_URL = "http://v2.listenloop.com"

# Contract (api-docs/README.md): per_page defaults to 25 and is capped at 100. We ask
# for 100 but never trust the server to honour it: the walk ends on an empty page.
PAGE_SIZE = 100
# The index endpoint is undocumented: a server that ignored `page` would answer the
# same full page for ever. Past this many pages the run fails, naming the setting
# (SOURCES__LISTENLOOP__MAX_PAGES): 500 pages is 12,500 campaigns even at 25 a page.
MAX_PAGES = 500

# The doc shows no error body; `{"error": "..."}` is Rails/Devise's (sandbox choice).
# Only used to quote the vendor's words in an error message.
ERROR_DETAIL_FIELD = "error"

# Lifetime counters copied into each snapshot row. Contract: they only grow.
COUNTER_FIELDS = (
    "impressions_count",
    "clicks_count",
    "page_views_count",
    "personalization_c_page_views_count",
    "conversion_c_page_views_count",
    "accounts_count",
    "accounts_with_impression_count",
    "turned_on_accounts_count",
)

# Budgets and bids copied into each snapshot: spend is estimated from them
# (contract: impressions x user_defined_cpm / 1000, or clicks x ecpc_target for CPC).
PRICING_FIELDS = ("daily_budget", "bw_lifetime_budget", "user_defined_cpm", "max_bid", "ecpc_target")
MONEY_FIELDS = PRICING_FIELDS

TIMESTAMP_FIELDS = ("created_at", "updated_at", "archived_at", "last_user_stopped_at")

# Documented fields that are often null (the doc's example shows them null): typed
# here so the columns exist even before any campaign carries a value.
NULLABLE_TEXT_FIELDS = ("destination_url", "user_defined_aggressiveness", "wizard_type", "worthy_of_wpe_description", "worthy_of_dsp_description")
# Contract: a null start_date falls back to created_at (the transforms' job).
DATE_FIELDS = ("start_date", "end_date")


def _typed(data_type: str, *names: str) -> dict[str, TColumnSchema]:
    return {name: {"data_type": data_type} for name in names}  # type: ignore[misc]


# Raw table -> typed columns (sources/catalog.py): every scalar field of the doc's
# create/edit examples, so each exists with its type even if only ever null.
TABLE_COLUMNS: dict[str, dict[str, TColumnSchema]] = {
    "campaigns": {
        **_typed("bigint", "id", "organization_id", "frequency_cap_impressions", "frequency_cap_duration", "targetable_accounts_count"),
        **_typed("text", "name", "user_defined_status", "billing_type", "bidding_strategy", "pacing", *NULLABLE_TEXT_FIELDS),
        **_typed("bool", "worthy_of_dsp", "worthy_of_wpe", "ctc_enabled"),
        **_typed("double", "ctr", "conversion_rate"),
        **_typed("date", *DATE_FIELDS),
        **_typed("bigint", *COUNTER_FIELDS),
        **decimal_columns(MONEY_FIELDS),
        **timestamp_columns(TIMESTAMP_FIELDS),
    },
    "campaign_snapshots": {
        **_typed("bigint", "campaign_id", *COUNTER_FIELDS),
        **_typed("text", "user_defined_status", "bidding_strategy"),
        **timestamp_columns(("snapshot_at", "campaign_updated_at")),
        **decimal_columns(PRICING_FIELDS),
    },
}
