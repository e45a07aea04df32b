"""Marin Social (paid social): accounts, advertisers, media plans, campaigns, ad sets,
ads, and daily statistics per campaign and per ad.

Dimensions carry no created/updated timestamps (contract), so they are re-read
whole and merged on id: accounts, advertisers, media plans and campaigns every run;
ad sets and ads (one request per campaign and per ad set) once a day by default,
and for new campaigns at once (settings.AD_DIMENSIONS_REFRESH_HOURS). Every list is read page by page with our own
parameters and checked against ``range.total`` (helpers.CheckedPages); every
non-2xx answer that retries do not cure fails the resource (``error_hook``). Statistics are read per media plan with
``aggregate=day`` over a window that starts RESTATEMENT_DAYS before the last loaded
day (contract: the last 3 days may be restated) and merged on (object id, date).

Backfill window (``end_date`` given): the statistics of the account-local days
``[start_date, end_date)`` of every media plan, merged on the same keys; no state is
read or written and the dimensions are not loaded (media plans are still read, as
the unselected parent of the statistics). See docs/sources/marin_social.md.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import dlt
import pendulum
from dlt.sources.helpers.rest_client import RESTClient
from dlt.sources.helpers.rest_client.auth import APIKeyAuth
from dlt.sources.rest_api import RESTAPIConfig, rest_api_resources

from sources._shared.arrow import ArrowPages
from sources._shared.http import concurrency_setting, error_hook, record_skip, session_for
from sources._shared.parallel import parallel_pages
from sources._shared.window import backfill_window
from sources.marin_social.helpers import (
    DATA,
    AdWalkSchedule,
    CheckedPages,
    conversion_names,
    has_ad_sets,
    rename,
    restated_from,
    shape_stats_row,
    stats_window,
    window_bounds,
)
from sources.marin_social.settings import (
    AD_DIMENSIONS_REFRESH_HOURS,
    AD_SET_NETWORKS,
    CONVERSION_METRICS,
    DEFAULT_BACKFILL_DAYS,
    DEFAULT_BASE_URL,
    DEFAULT_CAMPAIGN_SRC,
    MAX_CONCURRENT_REQUESTS,
    PAGE_SIZE,
    RESTATEMENT_DAYS,
    STATS_LEVELS,
    STATS_MONEY_FIELDS,
    TABLE_COLUMNS,
)

SOURCE = "marin_social"
# Doc "Status code": 4xx bodies carry {"message": ...}. 2xx passes; 401/403 fail at
# once (contract: not retried); 429/5xx are retried, then fail; any other status
# (400, 404, ...) fails the resource naming source, endpoint and status.
raise_on_error = error_hook(SOURCE, "message")
ERROR_HOOKS = {"response": [raise_on_error]}


def _columns(table: str) -> dict[str, Any]:
    return copy.deepcopy(TABLE_COLUMNS[table])


def _walk(client: RESTClient, path: str, params: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
    """Every page of one list, each asked for with ``params`` (a fresh paginator:
    dlt uses a paginator passed in as is, and this one counts the rows it reads).
    A copy of ``params``: dlt's paginator writes the page number into the dict it
    is given, and lists walked side by side share theirs (found by the latency
    benchmark: another walk's ``page=2`` read an empty page of a one-page list)."""
    yield from client.paginate(path, params=dict(params), paginator=CheckedPages(SOURCE), hooks=ERROR_HOOKS)


def _side_by_side(pages: Iterator[Any], parallel: bool) -> Iterator[Any]:
    """One list's pages, for a transformer to yield: inline (``parallel`` False), or
    as a generator that dlt's extract pool advances in a worker thread, one page at
    a time (``parallel_pages``: dlt's ``parallelized`` wrapper, closed safely), so
    the lists a transformer yields are fetched side by side while each list's pages
    stay in order. Errors are raised by the walk in the worker and re-raised by dlt
    for the resource."""
    if parallel:
        yield parallel_pages(pages)
    else:
        yield from pages


# Nested values (main_metrics, targeting, placement, funding instruments) stay in
# their row as JSON: no child tables, so a merge rewrites one row per object/day.
@dlt.source(name="marin_social", max_table_nesting=0)
def marin_social_source(
    api_key: str = dlt.secrets.value,
    base_url: str = DEFAULT_BASE_URL,
    start_date: str | None = None,
    # Backfill window mode: ISO date, exclusive; needs start_date. See sources/_shared/window.py.
    end_date: str | None = None,
    restatement_days: int = RESTATEMENT_DAYS,
    # A toml list, a JSON list or a comma-separated string (see helpers.conversion_names).
    conversion_metrics: str | None = None,
    # Rows per page (`limit`); the doc's maximum is 300.
    page_size: int = PAGE_SIZE,
    # Campaign `src` values that have ad sets (same formats as conversion_metrics).
    ad_set_networks: str | None = None,
    # Hours between whole walks of ad sets and ads (settings.AD_DIMENSIONS_REFRESH_HOURS).
    ad_dimensions_refresh_hours: float = AD_DIMENSIONS_REFRESH_HOURS,
    # Requests open at once (settings.MAX_CONCURRENT_REQUESTS); 1: one page at a time.
    max_concurrent_requests: int = MAX_CONCURRENT_REQUESTS,
    # Hand statistics to dlt as Arrow tables (sources/_shared/arrow.py); False: dict rows.
    arrow_stats: bool = True,
) -> Any:
    base_url = base_url.rstrip("/") + "/"
    window = backfill_window("marin_social", start_date, end_date)
    first_day = str(start_date)[:10] if start_date else pendulum.today("UTC").subtract(days=DEFAULT_BACKFILL_DAYS).to_date_string()
    # Doc "Authentication": the agency token goes in the `key` GET parameter of every
    # request. dlt's query-string auth keeps it out of our code paths; the shared
    # session masks it in connection errors.
    auth = APIKeyAuth(name="key", api_key=api_key, location="query")
    concurrency = concurrency_setting(SOURCE, max_concurrent_requests)
    parallel = concurrency > 1
    session = session_for(SOURCE, secrets=[api_key], max_in_flight=concurrency)
    page_size = int(page_size)
    if not 1 <= page_size <= PAGE_SIZE:
        raise ValueError(f"marin_social: page_size must be between 1 and {PAGE_SIZE} (doc: limit max 300), not {page_size}")
    list_params = {"limit": page_size}

    def endpoint(path: str) -> dict[str, Any]:
        # Doc "Pagination": every list answers {"data": [...], "range": {...}}. One
        # paginator per resource (it counts that resource's rows).
        return {"path": path, "params": list_params, "paginator": CheckedPages(SOURCE), "data_selector": DATA, "response_actions": [raise_on_error]}

    config: RESTAPIConfig = {
        "client": {"base_url": base_url, "auth": auth, "session": session},
        "resource_defaults": {
            # Contract: objects carry no created_at/updated_at, so every run re-reads
            # them whole and merges on id.
            "write_disposition": "merge",
            "primary_key": "id",
        },
        "resources": [
            {"name": "accounts", "endpoint": endpoint("accounts"), "columns": _columns("accounts")},
            {"name": "advertisers", "endpoint": endpoint("advertisers"), "columns": _columns("advertisers")},
            # Doc: media plans are the `/clients` endpoints.
            {"name": "media_plans", "endpoint": endpoint("clients"), "columns": _columns("media_plans")},
            {
                "name": "campaigns",
                # Doc "Get all Campaigns of a media plan" (its objects carry
                # special_ad_category, the agency-wide list's do not).
                "endpoint": endpoint("clients/{resources.media_plans.id}/campaigns"),
                "include_from_parent": ["id"],
                # One media plan's campaigns per worker (rest_api fetches every page
                # of a plan, then hands the rows on), several plans side by side.
                "parallelized": parallel,
                "processing_steps": [{"map": rename({"_media_plans_id": "media_plan_id"})}],
                "columns": _columns("campaigns"),
            },
        ],
    }
    resources = {r.name: r for r in rest_api_resources(config)}
    client = RESTClient(base_url=base_url, auth=auth, session=session, data_selector=DATA)
    networks = conversion_names(ad_set_networks or AD_SET_NETWORKS)
    schedule = AdWalkSchedule(float(ad_dimensions_refresh_hours))
    children = _children(client, resources["campaigns"], list_params, networks, schedule, parallel)

    # Hand-written below (dlt has no per-parent incremental): each media plan keeps
    # its own last loaded day, because (1) the window must start at a midnight of
    # the plan's ACCOUNT timezone, which rest_api's one `convert` cannot know, and
    # (2) one cursor for every plan would give a plan first seen later (or an
    # account far from the others' timezone) too short a window.
    accounts = _account_lookup(client, list_params)
    names = conversion_names(conversion_metrics or CONVERSION_METRICS)
    stats = [
        _stats_resource(
            table, level, id_column, resources["media_plans"], client, accounts, first_day, restatement_days, names, window, page_size, parallel,
            arrow_stats,
        )
        for table, (level, id_column) in STATS_LEVELS.items()
    ]
    if window is not None:
        # Backfill window: dimensions have no notion of time (contract: no
        # timestamps; every normal run re-reads them whole), so they are not loaded.
        # media_plans is still returned, deselected: dlt evaluates an unselected
        # parent for its selected transformers (the statistics) without loading it.
        # Its children (campaigns, ad sets, ads) are left out, so never requested.
        resources["media_plans"].selected = False
        return [resources["media_plans"], *stats]
    return [*resources.values(), *children, *stats]


def _children(
    client: RESTClient, campaigns: Any, params: dict[str, Any], networks: frozenset[str], schedule: AdWalkSchedule, parallel: bool = False
) -> list[Any]:
    """Ad sets and ads, hand-written because the endpoint depends on the campaign
    (rest_api builds one path for every parent row): doc "Create a new Ad Set":
    "Only available for Facebook Campaigns", so ad sets (and their ads, via "Get Ads
    from Adset", the only way to link an ad to its ad set) are read for campaigns of
    ``networks``; the others' ads via "Get Ads from Campaign", adset_id null.
    Only the campaigns ``schedule`` wants this run are walked (no timestamps to ask
    "what changed": see settings.AD_DIMENSIONS_REFRESH_HOURS).

    ``parallel``: each campaign's (each ad set's) list is walked in dlt's extract
    pool, side by side with the others (``_side_by_side``); the schedule (it
    writes the source state) is still asked here, in the extract thread."""

    def wanted(campaign: dict[str, Any], with_ad_sets: bool) -> bool:
        return has_ad_sets(campaign, networks, DEFAULT_CAMPAIGN_SRC) == with_ad_sets and schedule.wants(campaign["id"])

    def campaign_path(campaign: dict[str, Any]) -> str:
        return f"clients/{campaign['media_plan_id']}/campaigns/{campaign['id']}"

    def campaign_ad_sets(campaign: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
        # Doc "Get Ad Sets from Campaign": ad sets carry no campaign id, the path has it.
        for rows in _walk(client, campaign_path(campaign) + "/adsets", params):
            yield [{**s, "campaign_id": campaign["id"], "media_plan_id": campaign["media_plan_id"]} for s in rows]

    def ad_set_ads(adset: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
        path = f"clients/{adset['media_plan_id']}/campaigns/{adset['campaign_id']}/adsets/{adset['id']}/ads"
        for rows in _walk(client, path, params):
            yield [{**a, "adset_id": adset["id"], "campaign_id": adset["campaign_id"], "media_plan_id": adset["media_plan_id"]} for a in rows]

    def campaign_ads_pages(campaign: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
        for rows in _walk(client, campaign_path(campaign) + "/ads", params):
            yield [{**a, "adset_id": None, "campaign_id": campaign["id"], "media_plan_id": campaign["media_plan_id"]} for a in rows]

    @dlt.transformer(data_from=campaigns, name="ad_sets", write_disposition="merge", primary_key="id", columns=_columns("ad_sets"))
    def ad_sets(page: list[dict[str, Any]]) -> Iterator[Any]:
        for campaign in page:
            if wanted(campaign, with_ad_sets=True):
                yield from _side_by_side(campaign_ad_sets(campaign), parallel)

    @dlt.transformer(data_from=ad_sets, name="ads", write_disposition="merge", primary_key="id", columns=_columns("ads"))
    def ads(page: list[dict[str, Any]]) -> Iterator[Any]:
        for adset in page:
            yield from _side_by_side(ad_set_ads(adset), parallel)

    @dlt.transformer(data_from=campaigns, name="campaign_ads", table_name="ads", write_disposition="merge", primary_key="id", columns=_columns("ads"))
    def campaign_ads(page: list[dict[str, Any]]) -> Iterator[Any]:
        for campaign in page:
            if wanted(campaign, with_ad_sets=False):
                yield from _side_by_side(campaign_ads_pages(campaign), parallel)

    return [ad_sets, ads, campaign_ads]


def _account_lookup(client: RESTClient, params: dict[str, Any]) -> Callable[[], dict[str, dict[str, Any]]]:
    """Accounts by id, read once per run on first use (one request): statistics
    need each media plan's account timezone and currency."""
    cache: dict[str, dict[str, Any]] = {}

    def lookup() -> dict[str, dict[str, Any]]:
        if not cache:
            for page in _walk(client, "accounts", params):
                cache.update({str(a["id"]): a for a in page})
        return cache

    return lookup


def _plan_account(plan: dict[str, Any], accounts: Callable[[], dict[str, dict[str, Any]]], level: str) -> dict[str, Any] | None:
    """The media plan's account, or None after recording the plan as skipped: a plan
    whose account is not in /accounts (or has no timezone) has no account-local days
    to ask for, and must not cost the other plans their statistics."""
    account = accounts().get(str(plan.get("account_id")))
    if account is not None and account.get("timezone"):
        return account
    why = "is not in /accounts" if account is None else "has no timezone"
    record_skip(SOURCE, f"GET /clients/{plan['id']}/statistics (level={level})", None, f"account {plan.get('account_id')} of media plan {plan['id']} {why}")
    return None


def _stats_resource(
    table: str,
    level: str,
    id_column: str,
    media_plans: Any,
    client: RESTClient,
    accounts: Callable[[], dict[str, dict[str, Any]]],
    first_day: str,
    restatement_days: int,
    conversions: frozenset[str],
    window: tuple[date, date] | None = None,
    page_size: int = PAGE_SIZE,
    parallel: bool = False,
    arrow: bool = False,
) -> Any:
    """Statistics of ``level`` per media plan. ``parallel``: each plan's pages are
    walked in dlt's extract pool, side by side with the other plans'
    (``_side_by_side``); state is read in the extract thread and each plan's last
    day written by its own walk, after its last page. ``arrow``: rows reach dlt as
    Arrow tables (``ArrowPages``); each plan's walk then ends with an empty page,
    so the last walk to finish hands on the rows still collected."""

    def plan_pages(plan_id: str, account: dict[str, Any], params: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
        for page in _walk(client, f"clients/{plan_id}/statistics", params):
            yield [shape_stats_row(row, account, conversions, STATS_MONEY_FIELDS) for row in page]
        if arrow:
            yield []

    @dlt.transformer(
        data_from=media_plans,
        name=table,
        write_disposition="merge",
        primary_key=(id_column, "date"),
        columns=_columns(table),
    )
    def stats(plans: list[dict[str, Any]]) -> Iterator[Any]:
        if window is not None:
            # Backfill window: the same statistics request over the account-local
            # days [start, end) of every plan (hand-written for the reason above:
            # the bounds are midnights of each plan's account timezone, which no
            # rest_api param template can compute); the resource state
            # (last_date_by_media_plan) is neither read nor written (not even
            # setdefault), so the next normal run's windows are unchanged.
            for plan in plans:
                account = _plan_account(plan, accounts, level)
                if account is None:
                    continue
                start, end = window_bounds(window, account["timezone"])
                params = {"aggregate": "day", "level": level, "start_date": start, "end_date": end, "limit": page_size}
                yield from _side_by_side(plan_pages(str(plan["id"]), account, params), parallel)
            return
        # Media plan id -> its last loaded day (YYYY-MM-DD, account-local). Saved with
        # the load package at the end of a successful extract, like dlt incremental state.
        last_days: dict[str, str] = dlt.current.resource_state().setdefault("last_date_by_media_plan", {})

        def tracked(plan_id: str, account: dict[str, Any], params: dict[str, Any], end: int) -> Iterator[list[dict[str, Any]]]:
            newest = last_days.get(plan_id)
            last_asked = pendulum.from_timestamp(end, account["timezone"]).subtract(days=1).to_date_string()
            for rows in plan_pages(plan_id, account, params):
                # A row without a date is skipped and counted downstream (guard_rows), not a
                # KeyError here; a day after the plan's window (a vendor's "2100-01-01") is
                # loaded as sent but never becomes the cursor (the plan would stop loading).
                newest = max([newest or "", *(r["date"] for r in rows if r.get("date") and str(r["date"])[:10] <= last_asked)]) or None
                yield rows
            if newest:
                last_days[plan_id] = newest  # one key per plan: walks side by side never share one

        for plan in plans:
            plan_id = str(plan["id"])
            account = _plan_account(plan, accounts, level)
            if account is None:
                continue
            # Contract: the last RESTATEMENT_DAYS days may still change: re-read them.
            first = restated_from(last_days.get(plan_id), restatement_days, first_day)
            start, end = stats_window(first, account["timezone"])
            params = {"aggregate": "day", "level": level, "start_date": start, "end_date": end, "limit": page_size}
            # Doc "Get statistics about specific Media plan": level=campaign|ad gives
            # one row per object and day of the whole plan (contract: `date`, the
            # object's id and client_id on each row).
            yield from _side_by_side(tracked(plan_id, account, params, end), parallel)

    if arrow:
        # After the transformer and the bad-record filter (placement_affinity).
        stats.add_step(ArrowPages(SOURCE, f"GET /clients/{{id}}/statistics?level={level}", TABLE_COLUMNS[table]))
    return stats
