"""Marin Social constants (see docs/sources/marin_social.md)."""

# The documented host (doc, "How to call services"); configuration
# (SOURCES__MARIN_SOCIAL__BASE_URL) overrides it.
DEFAULT_BASE_URL = "https://api.mysocialpixel.com"

# Doc, every list's "Query Parameters": limit "Max 300".
PAGE_SIZE = 300

# First backfill when START_DATE is not configured: this many days before today.
DEFAULT_BACKFILL_DAYS = 90

# Contract (api-docs/README.md, Marin Social): "Figures for the last 3 days may
# still change (restated)".
RESTATEMENT_DAYS = 3

# Contract: the main_metrics entries that are conversions (number = count,
# amount = value). SOURCES__MARIN_SOCIAL__CONVERSION_METRICS overrides it.
CONVERSION_METRICS = ("leadgen.other", "app_custom_event.fb_mobile_purchase", "mobile_app_install")

# Statistics levels loaded, table name -> (level parameter, id column of that level).
STATS_LEVELS = {
    "campaign_stats_daily": ("campaign", "campaign_id"),
    "ad_stats_daily": ("ad", "ad_id"),
}

# Money in statistics rows, in the account's currency (contract). cpc/cpm/cpa are
# costs per unit, also money. ctr, convRate and roi are percentages: left as numbers.
STATS_MONEY_FIELDS = ("spent", "income", "cpc", "cpm", "cpa", "conversions_value")

# Money on dimensions: budgets (numbers) and bids (strings like "1.23") per the doc's examples.
CAMPAIGN_MONEY_FIELDS = ("daily_budget", "budget")
ADSET_MONEY_FIELDS = ("daily_budget", "bid")
AD_MONEY_FIELDS = ("bid",)
# Doc example: "start_date": "2018-01-01T08:00:00+0000".
CAMPAIGN_TIMESTAMP_FIELDS = ("start_date",)
