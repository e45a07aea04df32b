"""InboxFirst (email): campaigns with their stat summaries, and per-link click stats.

Stats keep changing for days after a send (contract), so every run re-reads the
details and link stats of the sends started within ``window_days`` and picks up new
sends, with one cursor per mailing list; older sends are final and never asked for
again (see docs/sources/inboxfirst.md).

Backfill window (``end_date`` given): the details and link stats of the sends
started in ``[start_date, end_date)``, merged on their keys; the cursors
(``helpers.STATE_KEY``) are neither read nor written.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import dlt
import pendulum
from dlt.sources.helpers.rest_client.auth import HttpBasicAuth
from dlt.sources.helpers.rest_client.paginators import PageNumberPaginator, SinglePagePaginator
from dlt.sources.rest_api import RESTAPIConfig, rest_api_resources

from sources._shared.http import concurrency_setting, entity_error_hook, error_hook, session_for
from sources._shared.jsonpaths import json_path
from sources.inboxfirst.helpers import (
    BackfillWindow,
    CampaignWindow,
    check_envelope,
    parse_mailing_list_ids,
    rename_parent_id,
    skip_bad_envelope,
)
from sources.inboxfirst.settings import (
    API_PREFIX,
    DEFAULT_START_DAYS_AGO,
    DEFAULT_WINDOW_DAYS,
    LINK_STATS_FIRST_PAGE,
    LINK_STATS_PAGE_SIZE,
    MAX_CONCURRENT_REQUESTS,
    TABLE_COLUMNS,
)

# Both halves of the Basic credentials, named in a 401/403 message.
_CREDENTIALS = "USERNAME and SOURCES__INBOXFIRST__API_KEY"


@dlt.source(name="inboxfirst", max_table_nesting=2)
def inboxfirst_source(
    base_url: str = dlt.config.value,
    username: str = dlt.secrets.value,
    api_key: str = dlt.secrets.value,
    # Any: dlt cannot resolve a Union; "1,2,3" (env) and [1, 2, 3] (toml) both arrive.
    mailing_list_ids: Any = dlt.config.value,
    start_date: str | None = None,
    # Backfill window mode: ISO date/datetime, exclusive; needs start_date.
    end_date: str | None = None,
    window_days: int = DEFAULT_WINDOW_DAYS,
    # Requests open at once (settings.MAX_CONCURRENT_REQUESTS); 1: one page at a time.
    max_concurrent_requests: int = MAX_CONCURRENT_REQUESTS,
) -> Any:
    concurrency = concurrency_setting("inboxfirst", max_concurrent_requests)
    backfill = BackfillWindow.from_args(start_date, end_date)
    now = pendulum.now("UTC")
    first_start = pendulum.parse(start_date) if start_date else now - pendulum.duration(days=DEFAULT_START_DAYS_AGO)
    window = CampaignWindow(first_start, int(window_days), now)  # type: ignore[arg-type]
    list_ids = parse_mailing_list_ids(mailing_list_ids)

    # Hand-written: contract says no endpoint lists mailing lists, so the parents of
    # the campaign lists come from configuration; each carries its own started_at__start.
    @dlt.resource(name="mailing_lists", selected=False)
    def mailing_lists() -> Iterator[list[dict[str, Any]]]:
        # Backfill: the window's start, no state read (CampaignWindow reads the cursors).
        def since(list_id: int) -> str:
            return backfill.since_param() if backfill else window.since_param(list_id)

        # One page (a list): rest_api's child resources iterate their parent's pages.
        yield [{"id": list_id, "started_since": since(list_id)} for list_id in list_ids]

    # Per-campaign endpoints: a campaign whose answer stays an error after retries
    # (404, 400, a persisting 429/5xx, an error envelope) is counted in ops.runs and
    # skipped, so one bad campaign cannot fail the source on every run. 401/403 still
    # fail the source at once.
    per_campaign = [window.holding(entity_error_hook("inboxfirst", "error_message", _CREDENTIALS)), window.holding(skip_bad_envelope)]

    config: RESTAPIConfig = {
        "client": {
            "base_url": base_url.rstrip("/") + "/" + API_PREFIX,
            # Contract: HTTP Basic, user = organization/user id, password = API key.
            "auth": HttpBasicAuth(username, api_key),
            "session": session_for("inboxfirst", secrets=[api_key], max_in_flight=concurrency),
        },
        "resource_defaults": {
            "endpoint": {
                # Any non-2xx fails the resource naming endpoint and status (429/5xx
                # after retries, 401/403 at once), then an error envelope does.
                "response_actions": [error_hook("inboxfirst", "error_message", _CREDENTIALS), check_envelope],
            },
        },
        "resources": [
            mailing_lists,
            {
                "name": "campaign_list",
                "selected": False,  # every list field is also in the details below
                # The configured list id, for its cursor (helpers.PARENT_LIST_ID).
                "include_from_parent": ["id"],
                "endpoint": {
                    "path": "mailing_lists/{resources.mailing_lists.id}/campaigns",
                    # Doc: started_at__start = "the earliest started_at time to include";
                    # giving it lists only sending/finished/cancelled/failed sends.
                    "params": {
                        "started_at__start": "{resources.mailing_lists.started_since}",
                        # Backfill: the documented upper bound, inclusive (doc: "the
                        # latest started_at time to include"); the exclusive end is
                        # enforced by BackfillWindow.keep.
                        **({"started_at__end": backfill.until_param()} if backfill else {}),
                    },
                    "data_selector": json_path("data"),
                    # Contract: the campaign list is not paginated.
                    "paginator": SinglePagePaginator(),
                },
                # Both before the details and link stats are asked for. Backfill: only
                # the window's filter, no cursor tracking (state untouched).
                "processing_steps": (
                    [{"filter": backfill.keep}] if backfill else [{"filter": window.keep}, {"map": window.track}]
                ),
            },
            {
                "name": "campaigns",
                "primary_key": "id",
                "write_disposition": "merge",
                # One send's details per extract worker, several sends side by side
                # (the per-campaign hooks, and the cursor hold they may do, are
                # thread-safe: CampaignWindow locks its state).
                "parallelized": concurrency > 1,
                "columns": copy.deepcopy(TABLE_COLUMNS["campaigns"]),
                "endpoint": {
                    # Doc: details carry stat_summary and content_stats; stat_summary
                    # may be null (absent for drafts, whose "stats" is null): the
                    # declared stat columns then stay NULL, never zeros.
                    "path": "campaigns/{resources.campaign_list.id}",
                    "data_selector": json_path("data"),
                    "paginator": SinglePagePaginator(),
                    "response_actions": per_campaign,
                },
            },
            {
                "name": "link_stats",
                "primary_key": ["campaign_id", "link_id"],
                "write_disposition": "merge",
                "include_from_parent": ["id"],
                # One send's link stats (every page, in order) per extract worker.
                "parallelized": concurrency > 1,
                "columns": copy.deepcopy(TABLE_COLUMNS["link_stats"]),
                "endpoint": {
                    "path": "campaigns/{resources.campaigns.id}/link_stats",
                    "params": {"per_page": LINK_STATS_PAGE_SIZE},
                    "data_selector": json_path("data.links"),
                    # Doc: page starts at 0, per_page max 500, and the body's num_pages
                    # is "the total number of pages that match the query": the end.
                    "paginator": PageNumberPaginator(
                        base_page=LINK_STATS_FIRST_PAGE, page_param="page", total_path=json_path("num_pages")
                    ),
                    "response_actions": per_campaign,
                },
                "processing_steps": [{"map": rename_parent_id}],
            },
        ],
    }
    resources = rest_api_resources(config)
    return resources
