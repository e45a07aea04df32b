"""Retreaver (call tracking): the v2 call log, the catalogue (campaigns, affiliates,
targets, numbers) and the daily / campaign-by-day reports.

Calls change after they are made (conversion, revenue and payout are set up to ~3
days later) and their ``updated_at`` moves forward when they do, so calls are read
newest-``updated_at``-first down to the previous run's cursor, and merged on uuid.

Every walk (calls, catalogue, reports) asks page after page until an EMPTY page,
following ``Link rel="next"`` when sent (``helpers.PageWalkPaginator``).

Backfill window (``end_date`` given): calls CREATED in ``[start_date, end_date)``
(days of ``report_timezone``) and the report days of that window are re-read and
merged on their keys; no state or cursor is read or written and the catalogue is
not loaded.
See docs/sources/retreaver.md.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import dlt
import pendulum
from dlt.sources.helpers.rest_client import RESTClient
from dlt.sources.rest_api import EndpointResource, RESTAPIConfig, rest_api_resources
from dlt.sources.rest_api.config_setup import create_response_hooks

from sources._shared.arrow import ArrowPages
from sources._shared.http import error_hook, session_for
from sources._shared.jsonpaths import json_path
from sources._shared.schema import not_in_future
from sources._shared.window import backfill_window
from sources.retreaver.helpers import (
    NextPageAhead,
    PageWalkPaginator,
    QueryKeyAuth,
    call_shaper,
    days_with_calls,
    keyed_rows,
    report_windows,
    rfc3339_midnight,
    shape_report_row,
)
from sources.retreaver.settings import (
    CATALOGUE_KEYS,
    DEFAULT_BASE_URL,
    DEFAULT_CALLS_BASE_URL,
    DEFAULT_CALLS_LAG_SECONDS,
    DEFAULT_EMAIL_TAG,
    DEFAULT_MAX_PAGES,
    DEFAULT_REPORT_LOOKBACK_DAYS,
    DEFAULT_REPORT_TIMEZONE,
    DEFAULT_START_DAYS_AGO,
    PAGE_SIZE,
    REPORT_MAX_DAYS,
    REPORT_PAGE_SIZE,
    TABLE_COLUMNS,
)


def columns(table: str) -> Any:
    """The declared hints of ``table`` (settings.TABLE_COLUMNS), a copy dlt may keep."""
    return copy.deepcopy(TABLE_COLUMNS[table])


# max_table_nesting=0: nested values (tags, fired_pixels, greeting, timers, ...) stay
# JSON columns of their row instead of child tables that merge would have to rewrite.
@dlt.source(name="retreaver", max_table_nesting=0)
def retreaver_source(
    api_key: str = dlt.secrets.value,
    company_id: str | None = None,
    base_url: str = DEFAULT_BASE_URL,
    calls_base_url: str = DEFAULT_CALLS_BASE_URL,
    start_date: str | None = None,
    # Backfill window mode: ISO date, exclusive; needs start_date. See sources/_shared/window.py.
    end_date: str | None = None,
    calls_lag_seconds: float = DEFAULT_CALLS_LAG_SECONDS,
    report_lookback_days: int = DEFAULT_REPORT_LOOKBACK_DAYS,
    calls_page_size: int = PAGE_SIZE,
    report_timezone: str = DEFAULT_REPORT_TIMEZONE,
    email_tag: str = DEFAULT_EMAIL_TAG,
    max_pages: int = DEFAULT_MAX_PAGES,
    # Ask for each walk's next page while the current one is processed (helpers.NextPageAhead).
    prefetch_next_page: bool = True,
    # Hand call pages to dlt as Arrow tables (sources/_shared/arrow.py); False: dict rows.
    arrow_calls: bool = True,
) -> Any:
    # Report days are days of report_timezone (assumption, doc silent; settings.py).
    today = pendulum.now(report_timezone).date()
    window = backfill_window("retreaver", start_date, end_date)
    first_day = date.fromisoformat(str(start_date)[:10]) if start_date else today - timedelta(days=DEFAULT_START_DAYS_AGO)
    ahead = NextPageAhead("retreaver", secrets=[api_key]) if prefetch_next_page else None
    session = ahead.session if ahead is not None else session_for("retreaver", secrets=[api_key])
    # Documented auth: api_key (and company_id) in the query string; an auth object
    # (not a param) keeps the key out of the config dict dlt may print.
    auth = QueryKeyAuth(name="api_key", api_key=api_key, location="query")
    # Doc "Authentication": company_id is only required with access to several
    # companies ("We suggest passing it in anyways"): sent when configured.
    company = {"company_id": str(company_id)} if company_id else {}
    # Every non-2xx answer, after retries for 429/5xx, fails the resource naming
    # source, endpoint and status (401/403 at once).
    on_error = error_hook("retreaver", "error")

    def catalogue(name: str, wrapper: str) -> EndpointResource:
        key = CATALOGUE_KEYS[name]  # what the doc's examples carry (settings.py)
        return {
            "name": name,
            "primary_key": key,
            # No updated_at filter is documented on any catalogue index: re-read whole
            # each run (a page or two) and merge on the key.
            "write_disposition": "merge",
            "columns": columns(name),
            "endpoint": {
                "path": f"{name}.json",
                "params": {**company, "per_page": PAGE_SIZE},
                # Contract: a top-level array of wrappers [{"campaign": {...}}].
                "data_selector": json_path(f"$[*].{wrapper}"),
                "paginator": PageWalkPaginator("retreaver", max_pages, ahead),
                "response_actions": [on_error],
            },
            "processing_steps": [{"filter": keyed_rows("retreaver", f"GET /{name}.json", key)}],
        }

    # Contract: prefer v2 (revenue, payout, cost, converted, campaign, tags), served
    # from its own host (doc: canary.retreaver.com).
    calls_path = calls_base_url.rstrip("/") + "/api/v2/calls.json"

    incremental_calls: EndpointResource = {
        "name": "calls",
        "primary_key": "uuid",
        "write_disposition": "merge",
        "columns": columns("calls"),
        "endpoint": {
            "path": calls_path,
            # Doc: sort_by=updated_at is ALWAYS newest first, whatever order says.
            "params": {**company, "sort_by": "updated_at", "order": "desc", "per_page": calls_page_size},
            "data_selector": json_path("$[*].call"),
            # The doc shows no Link header on v2 pages: a full page without one is
            # not the last (PageWalkPaginator asks the next page number). With
            # `ahead`, page N+1 is asked as soon as page N has ARRIVED: the server
            # still reads the pages in order, each after the one before was
            # answered, only sooner; the page-shift reasoning below holds as is.
            "paginator": PageWalkPaginator("retreaver", max_pages, ahead),
            # No updated_at filter exists: the cursor only stops the walk. Rows
            # come newest first (row_order="desc"), so the first row older than
            # start_value (= last run's newest updated_at - lag; START_DATE on
            # the first run) closes the generator: no further pages are asked.
            #
            # Pages shift while we read (they are computed per request): a call
            # updated mid-walk jumps to page 1 and the calls ahead of it shift
            # down one place. Consequences:
            #  * a shifted call is seen again at the top of the next page:
            #    merge on uuid (and incremental's boundary dedup) keep one;
            #  * nothing that did NOT move is skipped (shifts only push rows
            #    down, never past the pages still to read);
            #  * the call that moved is missed by THIS walk (page 1 is behind
            #    us), but its new updated_at is later than page 1 of this run
            #    was when we read it, i.e. later than the cursor this run
            #    stores (max updated_at seen), so the next run's first page
            #    returns it. That holds with lag 0; the lag (default 1 h) is a
            #    margin for vendor clock skew / late commits that stamp an
            #    updated_at slightly older than rows already visible.
            # Assumption (doc examples): v2 timestamps all have the same shape
            # (ms + "Z"), so the string cursor compares chronologically.
            "incremental": {
                "cursor_path": "updated_at",
                "initial_value": first_day.isoformat() + "T00:00:00.000Z",
                "row_order": "desc",
                "lag": calls_lag_seconds,
            },
            "response_actions": [on_error],
        },
        # Before dlt's incremental step: a call stamped in the future must not move the cursor.
        "processing_steps": [{"filter": not_in_future("retreaver", "GET /api/v2/calls.json", "updated_at")}, {"map": call_shaper(email_tag)}],
    }

    client = {"base_url": base_url.rstrip("/") + "/", "auth": auth, "session": session}
    if window is None:
        config: RESTAPIConfig = {
            "client": client,
            "resources": [
                incremental_calls,
                catalogue("campaigns", "campaign"),
                catalogue("affiliates", "affiliate"),
                catalogue("targets", "target"),
                catalogue("numbers", "number"),
            ],
        }
        calls, *catalogue_resources = rest_api_resources(config)
    else:
        # Backfill window: the calls CREATED in [start, end), with the documented
        # filters (doc "V2 - Enumerate through Calls in a specific date/time range":
        # created_at_start/created_at_end, RFC 3339), midnights of report_timezone
        # so the calls and the report days of a window agree. Inclusive start, exclusive end
        # is our reading of the doc's back-to-back day windows (2016-01-01T00:00 ..
        # 2016-01-02T00:00), the same as the emulator's. No `incremental`: dlt
        # neither reads nor writes the calls cursor. sort_by=created_at&order=asc
        # (doc: both accepted) keeps the pages stable: a call converting during the
        # walk keeps its created_at (and place), a new call is created after the
        # window. Merged on uuid like a normal run; a later normal run still
        # re-reads calls updated since its own cursor.
        endpoint = {key: value for key, value in incremental_calls["endpoint"].items() if key != "incremental"}  # type: ignore[union-attr]
        endpoint["params"] = {
            **company,
            "created_at_start": rfc3339_midnight(window[0], report_timezone),
            "created_at_end": rfc3339_midnight(window[1], report_timezone),
            "sort_by": "created_at",
            "order": "asc",
            "per_page": calls_page_size,
        }
        window_calls: EndpointResource = {**incremental_calls, "endpoint": endpoint}  # type: ignore[typeddict-item]
        # The catalogue has no notion of time (no filter, re-read whole by every
        # normal run): not loaded in window mode.
        (calls,) = rest_api_resources({"client": client, "resources": [window_calls]})
        catalogue_resources = []

    if arrow_calls:
        # After the filters, the call shaper and dlt's incremental step (placement_affinity).
        calls.add_step(ArrowPages("retreaver", "GET /api/v2/calls.json", TABLE_COLUMNS["calls"]))

    # Reports are hand-written: rest_api cannot step a window back N days from a
    # stored day, nor cut a range into the < 2 year windows the doc demands.
    reports = RESTClient(base_url=base_url.rstrip("/") + "/", auth=auth, session=session)
    report_hooks = create_response_hooks([on_error])

    def report_pages(facet: str, start: date, end: date) -> Iterator[list[dict[str, Any]]]:
        # Doc "Reports": domain=calls and facet mandatory; dates YYYY-MM-DD, end
        # exclusive (contract). No Link header, and the doc's count/count_total
        # count calls, not rows (2 rows: count 3): walked to the first empty page.
        params = {
            **company,
            "domain": "calls",
            "facet": facet,
            "created_at_start": start.isoformat(),
            "created_at_end": end.isoformat(),
            "per_page": REPORT_PAGE_SIZE,
        }
        for page in reports.paginate(
            "api/v1/reports.json",
            params=params,
            paginator=PageWalkPaginator("retreaver", max_pages, ahead),
            data_selector=json_path("data"),
            hooks=report_hooks,
        ):
            yield [page] if isinstance(page, dict) else list(page)

    @dlt.resource(name="report_daily", primary_key="day", write_disposition="merge", columns=columns("report_daily"))
    def report_daily() -> Iterator[list[dict[str, Any]]]:
        """facet=daily over [last loaded day - lookback, tomorrow): past days restate
        as late conversions land, so the lookback must exceed the ~3-day conversion delay.
        Backfill window: facet=daily over [start_date, end_date), state untouched."""
        if window is not None:
            # Hand-written like the normal path; the resource state (last_day) is
            # neither read nor written, so the next normal run's window is unchanged.
            for window_start, window_end in report_windows(window[0], window[1], REPORT_MAX_DAYS):
                for rows in report_pages("daily", window_start, window_end):
                    yield [shape_report_row(r, day=date.fromisoformat(str(r["id"]))) for r in rows]
            return
        state = dlt.current.resource_state()
        last_day = date.fromisoformat(state["last_day"]) if state.get("last_day") else None
        start = last_day - timedelta(days=report_lookback_days) if last_day else first_day
        newest = last_day
        for window_start, window_end in report_windows(start, today + timedelta(days=1), REPORT_MAX_DAYS):
            for rows in report_pages("daily", window_start, window_end):
                # Contract: with facet=daily each row's id (and facet_name) is the day.
                shaped = [shape_report_row(r, day=date.fromisoformat(str(r["id"]))) for r in rows]
                if shaped:
                    newest = max([d for d in (newest, *(r["day"] for r in shaped)) if d])
                    yield shaped
        if newest:
            state["last_day"] = newest.isoformat()

    @dlt.transformer(
        data_from=report_daily,
        name="report_campaign_daily",
        primary_key=("day", "campaign_id"),
        write_disposition="merge",
        columns=columns("report_campaign_daily"),
    )
    def report_campaign_daily(days: Any) -> Iterator[list[dict[str, Any]]]:
        """facet=campaign one report day at a time, only for days the daily facet says had
        calls (empty days cost nothing). Row id = internal campaign id (= v2 campaign_id)."""
        for day in days_with_calls(days if isinstance(days, list) else [days]):
            for rows in report_pages("campaign", day, day + timedelta(days=1)):
                yield [shape_report_row(r, day=day, campaign_id=r["id"]) for r in rows]

    return calls, *catalogue_resources, report_daily, report_campaign_daily
