"""ListenLoop (B2B display ads): campaigns and per-run counter snapshots.

The API has no daily figures and no spend: ``campaign_snapshots`` records every
campaign's lifetime counters at each run, and the transforms turn successive
snapshots into days (see docs/sources.md).
"""

from __future__ import annotations

from typing import Any, Iterator

import dlt
import pendulum
from dlt.sources.rest_api import RESTAPIConfig, rest_api_resources

from sources._shared.http import session_for
from sources._shared.schema import decimal_columns, timestamp_columns
from sources.listenloop.helpers import ShortPagePaginator, snapshot_rows
from sources.listenloop.settings import (
    COUNTER_FIELDS,
    DATE_FIELDS,
    DEFAULT_BASE_URL,
    MONEY_FIELDS,
    NULLABLE_TEXT_FIELDS,
    PAGE_SIZE,
    PRICING_FIELDS,
    TIMESTAMP_FIELDS,
)


@dlt.source(name="listenloop", max_table_nesting=1)
def listenloop_source(
    api_key: str = dlt.secrets.value,
    email: str = dlt.secrets.value,
    base_url: str = DEFAULT_BASE_URL,
) -> Any:
    config: RESTAPIConfig = {
        "client": {
            "base_url": base_url.rstrip("/") + "/",
            # Documented auth: both headers on every request.
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
                "columns": {
                    **decimal_columns(MONEY_FIELDS),
                    **timestamp_columns(TIMESTAMP_FIELDS),
                    **{f: {"data_type": "date"} for f in DATE_FIELDS},
                    **{f: {"data_type": "text"} for f in NULLABLE_TEXT_FIELDS},
                    **{f: {"data_type": "bigint"} for f in COUNTER_FIELDS},
                },
                "endpoint": {
                    "path": "campaigns",
                    "params": {"per_page": PAGE_SIZE},
                    "data_selector": "$",  # contract: a bare JSON array
                    "paginator": ShortPagePaginator(PAGE_SIZE),
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
        columns={
            **decimal_columns(PRICING_FIELDS),
            **timestamp_columns(("snapshot_at", "campaign_updated_at")),
            **{f: {"data_type": "bigint"} for f in COUNTER_FIELDS},
        },
    )
    def campaign_snapshots(page: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
        yield snapshot_rows(page, snapshot_at, COUNTER_FIELDS, PRICING_FIELDS)

    return campaigns, campaign_snapshots
