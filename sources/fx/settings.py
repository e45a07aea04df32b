"""FX constants (see docs/sources/fx.md).

The feed is Frankfurter (https://frankfurter.dev), a free, keyless JSON service that
republishes the European Central Bank's euro foreign exchange reference rates. Every
assumption about it is written next to the constant that relies on it; none could
be checked against the live service from the machine this was written on (no
internet): they come from Frankfurter's public documentation as we know it.
"""

from __future__ import annotations

from dlt.common.schema.typing import TColumnSchema

# Assumption (Frankfurter docs): the current documented base is
# https://api.frankfurter.dev/v1 (api.frankfurter.app is the older host of the same
# service). Configuration (SOURCES__FX__BASE_URL) overrides it; the sandbox sets it.
DEFAULT_BASE_URL = "https://api.frankfurter.dev/v1"

# Assumption (docs: "rates are quoted against the Euro by default"; ECB: reference
# rates are "units of currency per 1 euro"): with no `base` parameter every rate is
# units of the currency per ONE EURO, the ECB's own numbers, unrounded by any cross
# computation. The source checks the answer's `base` and fails loudly otherwise.
BASE_CURRENCY = "EUR"

# First load when START_DATE is not configured: this many days before today (UTC).
# Same depth as the vendor sources' first backfill (90 days).
DEFAULT_START_DAYS_AGO = 90

# Re-read this many days before the newest loaded rate day, every run (dlt
# incremental `lag`, in days for a date cursor). Why: (1) the ECB publishes around
# 16:00 CET on TARGET business days, so a run in the morning sees yesterday's
# fixing at best; (2) the ECB has, rarely, corrected a published rate; (3) with a
# lag >= 3 the last window always holds the last loaded business day, so it is
# never a weekend-only window (whose answer we do not know, see WINDOW_DAYS).
# SOURCES__FX__LAG_DAYS.
DEFAULT_LAG_DAYS = 4

# Time series are asked in windows of at most this many days (`/{start}..{end}`).
# Assumption we could not verify: Frankfurter may thin out long time series (weekly
# points) past some length; 90-day windows stay far below any such limit. A
# remainder shorter than MIN_WINDOW_DAYS joins the window before it, so no window is
# only a weekend (what an all-holiday window answers - empty `rates` or 404 - is not
# documented).
WINDOW_DAYS = 90
MIN_WINDOW_DAYS = 8

# Assumption (Frankfurter's answers): an error body is {"message": "not found"}.
# Only used to quote the service's own words in an error message.
ERROR_DETAIL_FIELD = "message"

# Rates are DECIMAL: ECB publishes 5 significant digits (1.0921 USD, 0.85678 GBP,
# 157.12 JPY, 17000.5 IDR); scale 8 keeps every one exactly (same as the seed).
RATE = {"data_type": "decimal", "precision": 18, "scale": 8}

# Raw table -> typed columns (sources/catalog.py). One row per (rate_date,
# currency_code): `rate` units of currency_code per one base_currency. The base
# itself is stored too (rate 1), so "which currencies does the feed know" and
# cross rates read one table.
TABLE_COLUMNS: dict[str, dict[str, TColumnSchema]] = {
    "rates": {
        "rate_date": {"data_type": "date", "nullable": False},
        "currency_code": {"data_type": "text", "nullable": False},
        "base_currency": {"data_type": "text"},
        "rate": dict(RATE),  # type: ignore[dict-item]
    },
}
