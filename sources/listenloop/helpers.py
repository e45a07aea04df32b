"""ListenLoop pieces dlt does not ship."""

from __future__ import annotations

from typing import Any, Iterable

from dlt.sources.helpers.rest_client.paginators import PageNumberPaginator
from requests import Response


class ShortPagePaginator(PageNumberPaginator):
    """Page numbers from 1; a page shorter than ``per_page`` is the last.

    Contract (api-docs/README.md, ListenLoop): the list has no total and no
    next link; a short (or empty) page ends it. dlt's PageNumberPaginator only
    stops on an empty page, which costs one extra request per run.
    """

    def __init__(self, per_page: int) -> None:
        super().__init__(base_page=1, page_param="page", total_path=None, stop_after_empty_page=True)
        self.per_page = per_page

    def update_state(self, response: Response, data: list[Any] | None = None) -> None:
        super().update_state(response, data)
        if data is not None and len(data) < self.per_page:
            self._has_next_page = False


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
