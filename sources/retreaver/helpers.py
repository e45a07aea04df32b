"""Retreaver pieces dlt does not ship."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Iterable, Iterator, Optional
from urllib.parse import parse_qs, urlsplit

from dlt.common.configuration import configspec
from dlt.sources.helpers.rest_client.auth import APIKeyAuth
from dlt.sources.helpers.rest_client.paginators import PageNumberPaginator
from requests import PreparedRequest, Response

from sources._shared.schema import to_decimal
from sources.retreaver.settings import CALL_MONEY_FIELDS, FLATTENED_TAGS, REPORT_MONEY_FIELDS


@configspec
class QueryKeyAuth(APIKeyAuth):
    """``api_key`` in the query string, added only when the URL lacks it: the doc's
    Link URLs already carry every parameter, key included (doc "Paginated"), and
    dlt's APIKeyAuth would append a second copy."""

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        if self.name in parse_qs(urlsplit(request.url or "").query):
            return request
        return super().__call__(request)


def shape_call(call: dict[str, Any]) -> dict[str, Any]:
    """Money to Decimal; the tags the transforms join on copied into columns."""
    for field in CALL_MONEY_FIELDS:
        if field in call:
            call[field] = to_decimal(call[field])
    tags = call.get("tags") or {}
    for key in FLATTENED_TAGS:
        call[f"tag_{key}"] = tags.get(key)
    return call


def shape_report_row(row: dict[str, Any], **keys: Any) -> dict[str, Any]:
    for field in REPORT_MONEY_FIELDS:
        if field in row:
            row[field] = to_decimal(row[field])
    return {**keys, **row}


class CountTotalPaginator(PageNumberPaginator):
    """Reports: ``page`` from 1; the body's ``count_total`` says when to stop.

    Contract (api-docs/README.md, Retreaver): the response is {"count",
    "count_total", "data"} and carries no Link header. dlt's total_path means a
    page count, not a row count, hence this subclass.
    """

    def __init__(self, per_page: int) -> None:
        super().__init__(base_page=1, page_param="page", total_path=None, stop_after_empty_page=True)
        self.per_page = per_page
        self.pages_read = 0

    def update_state(self, response: Response, data: Optional[list[Any]] = None) -> None:
        super().update_state(response, data)
        self.pages_read += 1
        total = response.json().get("count_total")
        pages_read = self.pages_read
        if total is not None and pages_read * self.per_page >= int(total):
            self._has_next_page = False


def report_windows(start: date, end: date, max_days: int) -> Iterator[tuple[date, date]]:
    """[start, end) cut into windows of at most ``max_days`` (doc: < 2 years apart)."""
    while start < end:
        stop = min(end, start + timedelta(days=max_days))
        yield start, stop
        start = stop


def days_with_calls(rows: Iterable[dict[str, Any]]) -> list[date]:
    return [r["day"] for r in rows if (r.get("total_calls") or 0) > 0]


def rfc3339_midnight(day: date) -> str:
    """UTC midnight of ``day`` in the format the doc gives for the calls filters
    (doc "V2 - Get recent Calls": created_at_start ``YYYY-MM-DDTHH:MM:SS+HH:MM``,
    "formatted according to rfc3339"). Sent URL-encoded (``+`` as ``%2B``)."""
    return f"{day.isoformat()}T00:00:00+00:00"
