"""ListenLoop pieces dlt does not ship."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from dlt.sources.helpers.rest_client.paginators import PageNumberPaginator
from requests import Response


class ListenLoopPaginationError(RuntimeError):
    """The campaign index did not end the way the contract says it ends."""


class EmptyPagePaginator(PageNumberPaginator):
    """Page numbers from 1; only an EMPTY page ends the list, within ``max_pages``.

    The index endpoint is undocumented (contract: a short page is the last). A
    server that caps ``per_page`` below what we ask answers full pages shorter than
    our ``per_page``; ending on a short page would then drop the rest without an
    error. An empty page costs one request and cannot mislead. dlt's paginator
    would stop silently at ``maximum_page``: this one fails, naming the setting.
    """

    def __init__(self, max_pages: int) -> None:
        super().__init__(base_page=1, page_param="page", total_path=None, stop_after_empty_page=True)
        self.max_pages = max_pages
        self._last_ids: list[Any] | None = None

    def init_request(self, request: Any) -> None:
        self._last_ids = None
        super().init_request(request)

    def update_state(self, response: Response, data: list[Any] | None = None) -> None:
        where = f"listenloop: GET {urlsplit(response.url or '').path}"
        body = response.json()
        if not isinstance(body, list):
            raise ListenLoopPaginationError(f"{where} page {self.current_value}: expected a JSON array (contract), got {type(body).__name__}")
        ids = [row.get("id") if isinstance(row, dict) else row for row in data or []]
        if ids and ids == self._last_ids:
            raise ListenLoopPaginationError(f"{where}: page {self.current_value} repeats page {self.current_value - 1}: the server ignores `page`")
        self._last_ids = ids
        super().update_state(response, data)
        if self._has_next_page and self.current_value > self.max_pages:
            raise ListenLoopPaginationError(
                f"{where}: page {self.max_pages} was not the last (no empty page yet); "
                "raise SOURCES__LISTENLOOP__MAX_PAGES if the list is really this long"
            )


def snapshot_rows(campaigns: Iterable[dict[str, Any]], snapshot_at: Any, counters: Iterable[str], pricing: Iterable[str]) -> list[dict[str, Any]]:
    """One row per campaign with its lifetime counters and pricing at ``snapshot_at``."""
    counters, pricing = tuple(counters), tuple(pricing)
    return [
        {
            "campaign_id": c["id"],
            "snapshot_at": snapshot_at,
            "campaign_updated_at": c.get("updated_at"),
            "user_defined_status": c.get("user_defined_status"),
            "bidding_strategy": c.get("bidding_strategy"),
            **{f: c.get(f) for f in counters},
            **{f: c.get(f) for f in pricing},
        }
        for c in campaigns
    ]
