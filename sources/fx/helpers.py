"""FX pieces dlt does not ship: a paginator that walks date windows in the URL
path, and the pivot of one answer into one row per (day, currency)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from dlt.sources.helpers.rest_client.paginators import BasePaginator
from requests import Request, Response

from sources._shared.http import record_skip
from sources._shared.schema import to_decimal

log = logging.getLogger("marketing_etl")

# A time-series path ends in "<start>.." or "<start>..<end>" (Frankfurter docs).
_SPAN = re.compile(r"(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})?$")


class FxFeedError(RuntimeError):
    """The feed answered 2xx with something that is not the documented shape."""


def windows(start: date, last: date, size: int, minimum: int) -> list[tuple[date, date]]:
    """[start, last] (both inclusive) cut into windows of ``size`` days; a remainder
    shorter than ``minimum`` joins the window before it. A start after ``last`` (a
    clock ahead of ours) asks for that one day."""
    if start > last:
        return [(start, start)]
    out: list[tuple[date, date]] = []
    cursor = start
    while cursor <= last:
        end = min(cursor + timedelta(days=size - 1), last)
        if (last - end).days < minimum:
            end = last
        out.append((cursor, end))
        cursor = end + timedelta(days=1)
    return out


class DateWindowPaginator(BasePaginator):
    """Walks ``/{start}..{end}`` windows from the start date the first request's
    path carries (rest_api fills it from the incremental cursor) up to ``last_day``.

    dlt's paginators move a query parameter, a page number or a link; this feed
    pages by dates in the PATH, so the windows are ours. Every window is asked
    whatever the previous one held (an empty window does not end the walk).
    """

    def __init__(self, last_day: date, window_days: int, min_window_days: int) -> None:
        super().__init__()
        self.last_day = last_day
        self.window_days = window_days
        self.min_window_days = min_window_days
        self._windows: list[tuple[date, date]] = []

    def init_request(self, request: Request) -> None:
        parts = urlsplit(request.url)
        match = _SPAN.search(parts.path)
        if not match:
            raise FxFeedError(f"fx: the time-series path must end in <start>.., got {parts.path!r}")
        start = date.fromisoformat(match.group(1))
        self._windows = windows(start, self.last_day, self.window_days, self.min_window_days)
        self._has_next_page = True
        self._set(request)

    def update_state(self, response: Response, data: list[Any] | None = None) -> None:
        self._windows.pop(0)
        self._has_next_page = bool(self._windows)

    def update_request(self, request: Request) -> None:
        if self._windows:  # dlt calls this after the last page too
            self._set(request)

    def _set(self, request: Request) -> None:
        start, end = self._windows[0]
        parts = urlsplit(request.url)
        path = _SPAN.sub(f"{start.isoformat()}..{end.isoformat()}", parts.path)
        request.url = urlunsplit(parts._replace(path=path))


def rate_rows(body: Any, base_currency: str, where: str = "fx") -> Iterator[dict[str, Any]]:
    """One answer -> one row per (day, currency), the base itself included at 1.

    Documented shape (Frankfurter "time series"): ``{"amount": 1.0, "base": "EUR",
    "start_date": ..., "end_date": ..., "rates": {"YYYY-MM-DD": {"USD": 1.0921, ...}}}``.
    An answer in another shape (no ``rates`` object, another base, another amount)
    fails loudly: silently loading nothing would leave the marts converting with
    ever older rates. One unusable quote is skipped and counted.
    """
    if not isinstance(body, dict) or not isinstance(body.get("rates"), dict):
        raise FxFeedError(f"{where}: expected an object with a `rates` object (time series), got {str(body)[:200]}")
    base = str(body.get("base") or "").upper()
    if base != base_currency:
        raise FxFeedError(f"{where}: rates are quoted against {base or 'nothing'!r}, expected {base_currency} (the ECB's base)")
    amount = to_decimal(body.get("amount", 1))
    if amount != 1:
        # Rates scale with `amount`; we never send it, so anything but 1 is a surprise.
        raise FxFeedError(f"{where}: rates are for an amount of {amount}, expected 1")
    for day, quotes in sorted(body["rates"].items()):
        if not isinstance(quotes, dict):
            raise FxFeedError(f"{where}: rates of {day} are not an object: {str(quotes)[:100]}")
        rate_date = date.fromisoformat(str(day)[:10]).isoformat()
        yield {"rate_date": rate_date, "currency_code": base, "base_currency": base, "rate": to_decimal(1)}
        for currency, value in sorted(quotes.items()):
            rate = to_decimal(value)
            if not isinstance(rate, Decimal) or not rate.is_finite() or rate <= 0:
                # One bad quote is skipped and counted (ops.runs skipped_entities),
                # not fatal: failing would keep that day inside every later run's
                # re-read window, and FX would never load again. The day converts
                # with the previous rate, and fx_rate_not_stale watches the age.
                detail = f"{currency} on {day}: no usable rate {str(value)[:40]!r}: skipped"
                record_skip("fx", "GET rates", None, detail)
                log.warning("%s: %s", where, detail, extra={"source": "fx"})
                continue
            yield {"rate_date": rate_date, "currency_code": str(currency).upper(), "base_currency": base, "rate": rate}
