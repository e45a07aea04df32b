"""ListenLoop constants (see docs/sources.md)."""

# The documented host; configuration (SOURCES__LISTENLOOP__BASE_URL) overrides it.
DEFAULT_BASE_URL = "http://v2.listenloop.com"

# Contract (api-docs/README.md): per_page defaults to 25 and is capped at 100.
PAGE_SIZE = 100

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

# Budgets and bids copied into each snapshot: spend is estimated from them.
PRICING_FIELDS = ("daily_budget", "bw_lifetime_budget", "user_defined_cpm", "max_bid", "ecpc_target")
MONEY_FIELDS = PRICING_FIELDS

TIMESTAMP_FIELDS = ("created_at", "updated_at", "archived_at", "last_user_stopped_at")

# Documented fields that are often null (the doc's example shows them null): typed
# here so the columns exist even before any campaign carries a value.
NULLABLE_TEXT_FIELDS = ("destination_url", "user_defined_aggressiveness", "wizard_type", "worthy_of_wpe_description", "worthy_of_dsp_description")
DATE_FIELDS = ("start_date", "end_date")
