"""ListenLoop (B2B display ads): campaigns and per-run counter snapshots.

The API has no daily figures and no spend: ``campaign_snapshots`` records every
campaign's lifetime counters at each run, and the transforms turn successive
snapshots into days (see docs/sources.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dlt
import pendulum
from dlt.sources.rest_api import RESTAPIConfig, rest_api_resources

from sources._shared.http import error_hook, session_for
from sources.listenloop.helpers import EmptyPagePaginator, snapshot_rows
from sources.listenloop.settings import (
    COUNTER_FIELDS,
    DEFAULT_BASE_URL,
    ERROR_DETAIL_FIELD,
    MAX_PAGES,
    PAGE_SIZE,
    PRICING_FIELDS,
    TABLE_COLUMNS,
)


@dlt.source(name="listenloop", max_table_nesting=1)
def listenloop_source(
    api_key: str = dlt.secrets.value,
    email: str = dlt.secrets.value,
    base_url: str = DEFAULT_BASE_URL,
    page_size: int = PAGE_SIZE,
    max_pages: int = MAX_PAGES,
) -> Any:
    config: RESTAPIConfig = {
        "client": {
            "base_url": base_url.rstrip("/") + "/",
            # Documented auth: both headers on every request. The session's redactor
            # masks the key in any error or log line.
            "headers": {"X-User-Token": api_key, "X-User-Email": email},
            "session": session_for("listenloop", secrets=[api_key]),
        },
        "resources": [
            {
                "name": "campaigns",
                "primary_key": "id",
                # Contract: no server-side filters and no updated_at filter, so the
                # list is re-read whole every run and merged on id.
                "write_disposition": "merge",
                "columns": TABLE_COLUMNS["campaigns"],
                "endpoint": {
                    "path": "campaigns",
                    "params": {"per_page": page_size},
                    "data_selector": "$",  # contract: a bare JSON array
                    "paginator": EmptyPagePaginator(max_pages),
                    # Every non-2xx fails the resource naming endpoint and status
                    # (429/5xx after retries); never an empty page.
                    "response_actions": [error_hook("listenloop", ERROR_DETAIL_FIELD, credentials="API_KEY / SOURCES__LISTENLOOP__EMAIL")],
                },
            }
        ],
    }
    (campaigns,) = rest_api_resources(config)
    snapshot_at = pendulum.now("UTC")

    @dlt.transformer(
        data_from=campaigns,
        name="campaign_snapshots",
        write_disposition="append",
        primary_key=("campaign_id", "snapshot_at"),
        columns=TABLE_COLUMNS["campaign_snapshots"],
    )
    def campaign_snapshots(page: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
        yield snapshot_rows(page, snapshot_at, COUNTER_FIELDS, PRICING_FIELDS)

    return campaigns, campaign_snapshots
