"""FX: the European Central Bank's daily euro reference rates, through Frankfurter
(a free, keyless JSON service serving the ECB's numbers), one row per (day, currency).

Incremental by rate day: each run asks from the newest loaded day minus a lag
(re-reading the last days) to today, in date windows, and merges on
(rate_date, currency_code). No credentials: the source runs whenever it is in the
run (``sources.fx.enabled = false`` turns it off; see pipelines/runner.py).
See docs/sources/fx.md.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import dlt
import pendulum
from dlt.sources.rest_api import RESTAPIConfig, rest_api_resources

from sources._shared.http import error_hook, session_for
from sources.fx.helpers import DateWindowPaginator, rate_rows
from sources.fx.settings import (
    BASE_CURRENCY,
    DEFAULT_BASE_URL,
    DEFAULT_LAG_DAYS,
    DEFAULT_START_DAYS_AGO,
    ERROR_DETAIL_FIELD,
    MIN_WINDOW_DAYS,
    TABLE_COLUMNS,
    WINDOW_DAYS,
)


@dlt.source(name="fx", max_table_nesting=0)
def fx_source(
    base_url: str = DEFAULT_BASE_URL,
    start_date: str | None = None,
    lag_days: int = DEFAULT_LAG_DAYS,
    # Comma-separated ISO codes to load (Frankfurter's `symbols`); default: every
    # currency the ECB publishes (~30 rows a day), so any reporting currency works.
    currencies: str | None = None,
    window_days: int = WINDOW_DAYS,
) -> Any:
    # Rate days are ECB (CET) business days; "today" in UTC is at most one day off
    # around midnight, which the lag re-reads anyway.
    today = pendulum.now("UTC").date()
    first_day = date.fromisoformat(str(start_date)[:10]) if start_date else today - timedelta(days=DEFAULT_START_DAYS_AGO)
    symbols = ",".join(c.strip().upper() for c in str(currencies).split(",") if c.strip()) if currencies else None

    config: RESTAPIConfig = {
        "client": {
            "base_url": base_url.rstrip("/") + "/",
            # Keyless: nothing to mask. The shared session meters requests and lets
            # dlt's client retry 429/5xx.
            "session": session_for("fx"),
        },
        "resources": [
            {
                "name": "rates",
                "primary_key": ["rate_date", "currency_code"],
                # A re-read day (lag) replaces its rows: a corrected ECB rate lands.
                "write_disposition": "merge",
                "columns": copy.deepcopy(TABLE_COLUMNS["rates"]),
                "endpoint": {
                    # Docs "Time series": GET /{start}..{end}. The start comes from the
                    # cursor (last loaded day - lag; START_DATE on the first run);
                    # DateWindowPaginator cuts [start, today] into windows.
                    "path": "{incremental.start_value}..",
                    # No `base` sent: EUR is the default (docs), and the ECB's own
                    # base. `symbols` only when configured (docs: comma-separated).
                    "params": {"symbols": symbols} if symbols else {},
                    "data_selector": "$",  # the whole answer; pivoted below
                    "paginator": DateWindowPaginator(today, window_days, MIN_WINDOW_DAYS),
                    "incremental": {
                        # A "YYYY-MM-DD" string cursor: dlt applies the lag in days.
                        "cursor_path": "rate_date",
                        "initial_value": first_day.isoformat(),
                        "lag": lag_days,
                    },
                    # Every non-2xx fails the resource naming endpoint and status
                    # (429/5xx after retries); never an empty page.
                    "response_actions": [error_hook("fx", ERROR_DETAIL_FIELD, credentials="BASE_URL")],
                },
            }
        ],
    }
    (rates,) = rest_api_resources(config)

    def pivot(body: Any) -> Iterator[dict[str, Any]]:
        yield from rate_rows(body, BASE_CURRENCY)

    # The answer is one object keyed by day (rest_api's `map` step is one item in,
    # one out): pivot it into rows BEFORE the incremental step (pipe index 1, right
    # after the request generator), so the cursor sees rate_date on every row.
    rates.add_yield_map(pivot, insert_at=1)
    return rates
