"""Marin Social constants (see docs/sources/marin_social.md)."""

from typing import Any

from sources._shared.schema import decimal_columns, timestamp_columns

# The documented host (doc, "How to call services"); configuration
# (SOURCES__MARIN_SOCIAL__BASE_URL) overrides it.
DEFAULT_BASE_URL = "https://api.mysocialpixel.com"

# Doc, every list's "Query Parameters": limit "Max 300". Default of the source's
# `page_size` argument (SOURCES__MARIN_SOCIAL__PAGE_SIZE).
PAGE_SIZE = 300

# Requests open at once (SOURCES__MARIN_SOCIAL__MAX_CONCURRENT_REQUESTS, 1..32):
# the pages that do not depend on each other (each media plan's campaigns and
# statistics, each campaign's ad sets or ads, each ad set's ads) are fetched side by
# side, in dlt's extract worker pool; one list's pages stay in order. Assumption:
# the doc states no rate or concurrency limit (a 429 would still be retried,
# honouring Retry-After, and counted as `throttled`). 5 is also the size of dlt's
# extract pool (EXTRACT__WORKERS, default 5): more than that needs both raised.
# 1 walks everything one page at a time, as before.
MAX_CONCURRENT_REQUESTS = 5

# First backfill when START_DATE is not configured: this many days before today.
DEFAULT_BACKFILL_DAYS = 90

# Contract (api-docs/README.md, Marin Social): "Figures for the last 3 days may
# still change (restated)".
RESTATEMENT_DAYS = 3

# Contract: the main_metrics entries that are conversions (number = count,
# amount = value). SOURCES__MARIN_SOCIAL__CONVERSION_METRICS overrides it.
CONVERSION_METRICS = ("leadgen.other", "app_custom_event.fb_mobile_purchase", "mobile_app_install")

# Doc "Create a new Ad Set": "Only available for Facebook Campaigns". The doc does
# not say what GET .../adsets answers for another campaign type, so ad sets are
# asked only of campaigns whose `src` is listed here; the others' ads are read with
# "Get Ads from Campaign". SOURCES__MARIN_SOCIAL__AD_SET_NETWORKS overrides it.
AD_SET_NETWORKS = ("fb",)
# Assumption (every doc example carries `src`): a campaign without `src` is a
# Facebook campaign, the doc's default network.
DEFAULT_CAMPAIGN_SRC = "fb"

# Ad sets and ads (read one campaign, then one ad set, at a time: most of a full
# load's requests) are walked whole at most once per this many hours; in between,
# only campaigns not walked before are. Objects carry no updated_at (contract), so
# this is a trade: an edit to an existing ad or ad set (status, bid, name), or a new
# ad in an existing campaign, reaches the warehouse up to this late. Statistics,
# campaigns, media plans and accounts are read every run, and the marts read no ad
# set or ad attribute. 0 walks every run. SOURCES__MARIN_SOCIAL__AD_DIMENSIONS_REFRESH_HOURS.
AD_DIMENSIONS_REFRESH_HOURS = 24.0

# Statistics levels loaded, table name -> (level parameter, id column of that level).
STATS_LEVELS = {
    "campaign_stats_daily": ("campaign", "campaign_id"),
    "ad_stats_daily": ("ad", "ad_id"),
}

# Money in statistics rows, in the account's currency (contract). cpc/cpm/cpa are
# costs per unit, also money. ctr, convRate and roi are percentages: left as numbers.
STATS_MONEY_FIELDS = ("spent", "income", "cpc", "cpm", "cpa", "conversions_value")

# Money on dimensions: budgets (numbers) and bids (strings like "1.23") per the
# doc's examples; lifetime_budget on the doc's Twitter campaign example.
CAMPAIGN_MONEY_FIELDS = ("daily_budget", "budget", "lifetime_budget")
ADSET_MONEY_FIELDS = ("daily_budget", "bid")
AD_MONEY_FIELDS = ("bid",)
# Doc example: "start_date": "2018-01-01T08:00:00+0000".
CAMPAIGN_TIMESTAMP_FIELDS = ("start_date",)

# Hint dicts are never shared between columns (dlt fills in hints in place).
def _typed(data_type: str) -> dict[str, str]:
    return {"data_type": data_type}


def _stats_columns() -> dict[str, dict[str, Any]]:
    return {
        "date": {"data_type": "date"},
        "client_id": _typed("text"),
        "campaign_id": _typed("text"),
        **decimal_columns(STATS_MONEY_FIELDS),
        "impression": _typed("bigint"),
        "click": _typed("bigint"),
        "conversions": _typed("bigint"),
        "main_metrics": _typed("json"),
        "other_metrics": _typed("json"),
        # Added from the media plan's account; null when the account has no currency
        # (the doc's Twitter account example): the marts treat it as unconvertible.
        "account_id": _typed("text"),
        "currency": _typed("text"),
        "timezone": _typed("text"),
        # Ratios and percentages the doc's rows carry as numbers (ctrLinks, convRate...
        # under dlt's snake_case names): not money, kept as doubles.
        "ctr": _typed("double"),
        "ctr_links": _typed("double"),
        "conv_rate": _typed("double"),
        "conv_rate_links": _typed("double"),
        "roi": _typed("double"),
    }

# Raw table -> dlt column hints (with types) of every column a staging model reads,
# and the nested/money/timestamp columns: the resources use exactly these hints, so
# a column exists even if the vendor omits the field or only sends null.
TABLE_COLUMNS = {
    "accounts": {
        "id": _typed("text"),
        "name": _typed("text"),
        # Absent from the doc's Twitter account example.
        "currency": _typed("text"),
        "timezone": _typed("text"),
        "active": _typed("bool"),
        "src": _typed("text"),
        # A list on the doc's Twitter account example: kept as JSON.
        "funding_instruments": _typed("json"),
    },
    "advertisers": {"id": _typed("text"), "name": _typed("text"), "currency": _typed("text")},
    "media_plans": {"id": _typed("text"), "name": _typed("text"), "account_id": _typed("text"), "advertiser_id": _typed("text"), "src": _typed("text")},
    "campaigns": {
        "id": _typed("text"),
        "name": _typed("text"),
        "account_id": _typed("text"),
        "client_id": _typed("text"),
        "media_plan_id": _typed("text"),
        "status": _typed("text"),
        "src": _typed("text"),
        "deleted": _typed("bool"),
        "archived": _typed("bool"),
        **decimal_columns(CAMPAIGN_MONEY_FIELDS),
        **timestamp_columns(CAMPAIGN_TIMESTAMP_FIELDS),
    },
    "ad_sets": {"id": _typed("text"), "name": _typed("text"), "campaign_id": _typed("text"), "media_plan_id": _typed("text"), **decimal_columns(ADSET_MONEY_FIELDS)},
    "ads": {
        "id": _typed("text"),
        "name": _typed("text"),
        # Null for ads of a campaign without ad sets (read per campaign).
        "adset_id": _typed("text"),
        "campaign_id": _typed("text"),
        "media_plan_id": _typed("text"),
        **decimal_columns(AD_MONEY_FIELDS),
        # Targeting and placement are nested objects of lists: kept as JSON.
        "target": _typed("json"),
        "placement": _typed("json"),
    },
    "campaign_stats_daily": _stats_columns(),
    "ad_stats_daily": {**_stats_columns(), "ad_id": _typed("text"), "adset_id": _typed("text")},
}
