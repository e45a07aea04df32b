"""Retreaver constants and defaults (see docs/sources/retreaver.md)."""

from __future__ import annotations

from dlt.common.schema.typing import TColumnSchema

from sources._shared.schema import decimal_columns, timestamp_columns

# The documented hosts; configuration (SOURCES__RETREAVER__BASE_URL and
# SOURCES__RETREAVER__CALLS_BASE_URL) overrides them. The v2 call log lives on its
# own host (doc "V2 - Get recent Calls": canary.retreaver.com).
DEFAULT_BASE_URL = "https://api.retreaver.com"
DEFAULT_CALLS_BASE_URL = "https://canary.retreaver.com"

# Doc "Paginated": 25 per page by default; contract: per_page up to 100 accepted.
# Only a request: pages are walked to the first empty one whatever size comes back.
PAGE_SIZE = 100
# Reports: per_page default 25 (contract), no documented cap. 100 keeps the first
# backfill to a few pages.
REPORT_PAGE_SIZE = 100
# A walk still returning rows after this many pages fails loudly (a server that
# never answers an empty page). 20 000 pages of 100 = 2 M calls in one walk.
# SOURCES__RETREAVER__MAX_PAGES.
DEFAULT_MAX_PAGES = 20_000

# First backfill starts this many days back when START_DATE is not configured.
DEFAULT_START_DAYS_AGO = 90
# Re-read calls updated up to this many seconds before the newest updated_at of
# the previous run: covers vendor clock skew / late commits (see __init__.py).
DEFAULT_CALLS_LAG_SECONDS = 3600
# Report days re-read before the last loaded day. Calls convert up to ~3 days after
# they are made (contract: conversions set later), so a day's figures keep changing
# for 3 days; 4 covers that plus the day boundary. SOURCES__RETREAVER__REPORT_LOOKBACK_DAYS.
DEFAULT_REPORT_LOOKBACK_DAYS = 4
# Assumption (doc silent): the reports' days (facet=daily, created_at_start/end
# dates) are days of this IANA time zone. Also the zone of the backfill window's
# call filters, so both read the same days. SOURCES__RETREAVER__REPORT_TIMEZONE.
DEFAULT_REPORT_TIMEZONE = "UTC"
# Doc "Reports": created_at_start/created_at_end less than 2 years apart.
REPORT_MAX_DAYS = 365

# v2 call money: revenue/payout/profit_net numbers (null until converted),
# charge_total/total_cost/profit_gross strings (doc "V2 - Get recent Calls").
CALL_MONEY_FIELDS = ("revenue", "payout", "postback_value", "charge_total", "total_cost", "profit_gross", "profit_net")
CALL_TIMESTAMP_FIELDS = ("start_time", "forwarded_time", "end_time", "conversions_determined_at", "updated_at", "created_at")
# Tags the transforms join on, flattened into columns tag_<key> (contract: a
# call's tags may hold utm_campaign / utm_source).
UTM_TAGS = ("utm_campaign", "utm_source")
# Assumption (neither doc nor contract names it): the tag carrying the caller's
# email, flattened into tag_email. SOURCES__RETREAVER__EMAIL_TAG.
DEFAULT_EMAIL_TAG = "email"

CATALOGUE_TIMESTAMP_FIELDS = ("created_at", "updated_at")
TARGET_TIMESTAMP_FIELDS = ("created_at", "updated_at", "paused_at")

# Merge key of each catalogue index, from what the doc's examples show: campaigns
# and affiliates carry only their customer ids cid / afid (doc "Campaigns", "Update
# an Affiliate": no "id"; cid defaults to 8 random characters, afid is required);
# targets and numbers carry "id" (tid may be null). A customer who edits a cid or
# afid gets a second row for that object.
CATALOGUE_KEYS = {"campaigns": "cid", "affiliates": "afid", "targets": "id", "numbers": "id"}

# Report rows (doc "Reports" examples): money figures arrive as floats.
REPORT_MONEY_FIELDS = ("revenue", "payout", "cost", "profit", "rescued_revenue", "epc", "cpc")


def _text(*names: str) -> dict[str, TColumnSchema]:
    return {name: {"data_type": "text"} for name in names}


def _bigint(*names: str) -> dict[str, TColumnSchema]:
    return {name: {"data_type": "bigint"} for name in names}


def _bool(*names: str) -> dict[str, TColumnSchema]:
    return {name: {"data_type": "bool"} for name in names}


_REPORT_COLUMNS: dict[str, TColumnSchema] = {
    "day": {"data_type": "date"},
    "total_calls": {"data_type": "bigint"},
    "converted_count": {"data_type": "double"},  # a float in the doc's rows (0.0)
    **decimal_columns(REPORT_MONEY_FIELDS),
}

# Every raw table's declared columns (dlt hints with a type), used as the
# resources' column hints: a field the API omits or only ever sends as null still
# becomes a column (the doc's v2 calls show system_affiliate_id: null; its
# campaigns and affiliates no "id"). Covers every column the staging models read.
TABLE_COLUMNS: dict[str, dict[str, TColumnSchema]] = {
    "calls": {
        **_text("uuid", "cid", "afid", "sid", "campaign_name", "affiliate_name", "target_name", "status", "caller", "number"),
        **_bigint(
            "company_id", "campaign_id", "system_campaign_id", "system_affiliate_id", "system_target_id",
            "target_id", "number_id", "total_duration", "dialed_call_duration",
        ),
        **_bool("converted", "connected", "duplicate"),
        **decimal_columns(CALL_MONEY_FIELDS),
        **timestamp_columns(CALL_TIMESTAMP_FIELDS),
        # A row read twice in one run (pages shift, see __init__.py) keeps its newest version.
        "updated_at": {"data_type": "timestamp", "timezone": True, "dedup_sort": "desc"},
        "tags": {"data_type": "json"},  # every tag, queryable with json functions
        **_text(*(f"tag_{key}" for key in UTM_TAGS), "tag_email"),
        # The rest of the doc's v2 call fields, typed as dlt inferred them from the
        # doc-shaped rows, so a page can be handed to dlt as an Arrow table
        # (sources/_shared/arrow.py). Fields the doc only shows as null
        # (caller_number_sent, upstream_call_uuid, conversion_seconds, the *_timer_fired
        # flags) stay undeclared: dlt types them from their first value.
        **_text(
            "caller_state", "caller_city", "caller_country", "caller_zip", "dialed_number", "hung_up_by",
            "visitor_url", "recording_url", "tid", "via",
        ),
        **_bigint(
            "ivr_duration", "hold_duration", "callpixels_target_id", "fired_pixels_count", "billable_minutes",
            "time_to_call_in_seconds", "time_to_connect_in_seconds",
        ),
        **_bool(
            "payable", "receivable", "payable_duplicate", "receivable_duplicate", "repeat", "affiliate_repeat",
            "target_repeat", "number_repeat", "rescued",
        ),
        **{name: {"data_type": "json"} for name in ("keys_pressed", "downstream_call_uuids", "target_group", "fired_pixels")},
    },
    "campaigns": {**_bigint("id"), **_text("cid", "name"), **timestamp_columns(CATALOGUE_TIMESTAMP_FIELDS)},
    "affiliates": {
        **_bigint("id"), **_text("afid", "first_name", "last_name", "company_name"), **timestamp_columns(CATALOGUE_TIMESTAMP_FIELDS),
    },
    "targets": {**_bigint("id"), **_text("tid", "name", "number"), **timestamp_columns(TARGET_TIMESTAMP_FIELDS)},
    "numbers": {**_bigint("id"), **_text("number", "cid", "afid", "sid"), **timestamp_columns(CATALOGUE_TIMESTAMP_FIELDS)},
    "report_daily": dict(_REPORT_COLUMNS),
    "report_campaign_daily": {**_REPORT_COLUMNS, "campaign_id": {"data_type": "bigint"}},
}
