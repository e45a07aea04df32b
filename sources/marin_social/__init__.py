"""Marin Social (paid social): accounts, advertisers, media plans, campaigns, ad sets,
ads, and daily statistics per campaign and per ad.

Dimensions carry no created/updated timestamps (contract), so they are re-read
whole every run and merged on id. Statistics are read per media plan with
``aggregate=day`` over a window that starts RESTATEMENT_DAYS before the last loaded
day (contract: the last 3 days may be restated) and merged on (object id, date).

Backfill window (``end_date`` given): the statistics of the account-local days
``[start_date, end_date)`` of every media plan, merged on the same keys; no state is
read or written and the dimensions are not loaded (media plans are still read, as
the unselected parent of the statistics). See docs/sources/marin_social.md.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Callable, Iterator, Optional

import dlt
import pendulum
from dlt.sources.helpers.rest_client import RESTClient
from dlt.sources.helpers.rest_client.auth import APIKeyAuth
from dlt.sources.helpers.rest_client.paginators import JSONLinkPaginator
from dlt.sources.rest_api import RESTAPIConfig, rest_api_resources

from sources._shared.http import error_hook, session_for
from sources._shared.window import backfill_window
from sources._shared.schema import decimal_columns, timestamp_columns
from sources.marin_social.helpers import (
    conversion_names,
    rename,
    restated_from,
    shape_stats_row,
    stats_window,
    window_bounds,
)
from sources.marin_social.settings import (
    AD_MONEY_FIELDS,
    ADSET_MONEY_FIELDS,
    CAMPAIGN_MONEY_FIELDS,
    CAMPAIGN_TIMESTAMP_FIELDS,
    CONVERSION_METRICS,
    DEFAULT_BACKFILL_DAYS,
    DEFAULT_BASE_URL,
    PAGE_SIZE,
    RESTATEMENT_DAYS,
    STATS_LEVELS,
    STATS_MONEY_FIELDS,
)


# Doc "Status code": 403 Access denied, body {"message": ...}; contract: 401/403 not retried.
raise_on_denied = error_hook("marin_social", "message")
DENIED_HOOKS = {"response": [raise_on_denied]}


def _paginator() -> JSONLinkPaginator:
    # Doc "Pagination" + contract: range.next is the absolute URL of the next page
    # (every parameter kept), absent or null on the last page.
    return JSONLinkPaginator(next_url_path="range.next")


# Nested values (main_metrics, targeting, placement, funding instruments) stay in
# their row as JSON: no child tables, so a merge rewrites one row per object/day.
@dlt.source(name="marin_social", max_table_nesting=0)
def marin_social_source(
    api_key: str = dlt.secrets.value,
    base_url: str = DEFAULT_BASE_URL,
    start_date: Optional[str] = None,
    # Backfill window mode: ISO date, exclusive; needs start_date. See sources/_shared/window.py.
    end_date: Optional[str] = None,
    restatement_days: int = RESTATEMENT_DAYS,
    # A toml list, a JSON list or a comma-separated string (see helpers.conversion_names).
    conversion_metrics: Optional[str] = None,
) -> Any:
    base_url = base_url.rstrip("/") + "/"
    window = backfill_window("marin_social", start_date, end_date)
    first_day = str(start_date)[:10] if start_date else pendulum.today("UTC").subtract(days=DEFAULT_BACKFILL_DAYS).to_date_string()
    # Doc "Authentication": the agency token goes in the `key` GET parameter of every
    # request. dlt's query-string auth keeps it out of our code paths; the shared
    # session masks it in connection errors.
    auth = APIKeyAuth(name="key", api_key=api_key, location="query")
    session = session_for("marin_social", secrets=[api_key])
    list_params = {"limit": PAGE_SIZE}

    config: RESTAPIConfig = {
        "client": {"base_url": base_url, "auth": auth, "session": session, "paginator": _paginator()},
        "resource_defaults": {
            # Contract: objects carry no created_at/updated_at, so every run re-reads
            # them whole and merges on id.
            "write_disposition": "merge",
            "primary_key": "id",
            # Doc "Pagination": every list answers {"data": [...], "range": {...}}.
            "endpoint": {"data_selector": "data", "params": list_params, "response_actions": [raise_on_denied]},
        },
        "resources": [
            # funding_instruments: a list on Twitter accounts (doc example); kept as JSON.
            {"name": "accounts", "endpoint": {"path": "accounts"}, "columns": {"funding_instruments": {"data_type": "json"}}},
            {"name": "advertisers", "endpoint": {"path": "advertisers"}},
            # Doc: media plans are the `/clients` endpoints.
            {"name": "media_plans", "endpoint": {"path": "clients"}},
            {
                "name": "campaigns",
                # Doc "Get all Campaigns of a media plan" (its objects carry
                # special_ad_category, the agency-wide list's do not).
                "endpoint": {"path": "clients/{resources.media_plans.id}/campaigns", "params": list_params},
                "include_from_parent": ["id"],
                "processing_steps": [{"map": rename({"_media_plans_id": "media_plan_id"})}],
                "columns": {**decimal_columns(CAMPAIGN_MONEY_FIELDS), **timestamp_columns(CAMPAIGN_TIMESTAMP_FIELDS)},
            },
            {
                "name": "ad_sets",
                # Doc "Get Ad Sets from Campaign": ad sets carry no campaign id, the path has it.
                "endpoint": {"path": "clients/{resources.campaigns.media_plan_id}/campaigns/{resources.campaigns.id}/adsets", "params": list_params},
                "include_from_parent": ["id", "media_plan_id"],
                "processing_steps": [{"map": rename({"_campaigns_id": "campaign_id", "_campaigns_media_plan_id": "media_plan_id"})}],
                "columns": decimal_columns(ADSET_MONEY_FIELDS),
            },
            {
                "name": "ads",
                # Doc: ad objects carry no adset_id; "Get Ads from Adset" links them.
                "endpoint": {
                    "path": "clients/{resources.ad_sets.media_plan_id}/campaigns/{resources.ad_sets.campaign_id}/adsets/{resources.ad_sets.id}/ads",
                    "params": list_params,
                },
                "include_from_parent": ["id", "campaign_id", "media_plan_id"],
                "processing_steps": [
                    {"map": rename({"_ad_sets_id": "adset_id", "_ad_sets_campaign_id": "campaign_id", "_ad_sets_media_plan_id": "media_plan_id"})}
                ],
                # Targeting and placement are nested objects of lists: kept as JSON.
                "columns": {**decimal_columns(AD_MONEY_FIELDS), "target": {"data_type": "json"}, "placement": {"data_type": "json"}},
            },
        ],
    }
    resources = {r.name: r for r in rest_api_resources(config)}

    # Hand-written below (dlt has no per-parent incremental): each media plan keeps
    # its own last loaded day, because (1) the window must start at a midnight of
    # the plan's ACCOUNT timezone, which rest_api's one `convert` cannot know, and
    # (2) one cursor for every plan would give a plan first seen later (or an
    # account far from the others' timezone) too short a window.
    client = RESTClient(base_url=base_url, auth=auth, session=session, paginator=_paginator(), data_selector="data")
    accounts = _account_lookup(client)
    names = conversion_names(conversion_metrics or CONVERSION_METRICS)
    stats = [
        _stats_resource(table, level, id_column, resources["media_plans"], client, accounts, first_day, restatement_days, names, window)
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
    return [*resources.values(), *stats]


def _account_lookup(client: RESTClient) -> Callable[[], dict[str, dict[str, Any]]]:
    """Accounts by id, read once per run on first use (one request): statistics
    need each media plan's account timezone and currency."""
    cache: dict[str, dict[str, Any]] = {}

    def lookup() -> dict[str, dict[str, Any]]:
        if not cache:
            for page in client.paginate("accounts", params={"limit": PAGE_SIZE}, hooks=DENIED_HOOKS):
                cache.update({str(a["id"]): a for a in page})
        return cache

    return lookup


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
    window: Optional[tuple[date, date]] = None,
) -> Any:
    @dlt.transformer(
        data_from=media_plans,
        name=table,
        write_disposition="merge",
        primary_key=(id_column, "date"),
        columns={
            "date": {"data_type": "date"},
            **decimal_columns(STATS_MONEY_FIELDS),
            "conversions": {"data_type": "bigint"},
            "impression": {"data_type": "bigint"},
            "click": {"data_type": "bigint"},
            "main_metrics": {"data_type": "json"},
            "other_metrics": {"data_type": "json"},
        },
    )
    def stats(plans: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
        if window is not None:
            # Backfill window: the same statistics request over the account-local
            # days [start, end) of every plan (hand-written for the reason above:
            # the bounds are midnights of each plan's account timezone, which no
            # rest_api param template can compute); the resource state
            # (last_date_by_media_plan) is neither read nor written (not even
            # setdefault), so the next normal run's windows are unchanged.
            for plan in plans:
                account = accounts()[str(plan["account_id"])]
                start, end = window_bounds(window, account["timezone"])
                params = {"aggregate": "day", "level": level, "start_date": start, "end_date": end, "limit": PAGE_SIZE}
                for page in client.paginate(f"clients/{plan['id']}/statistics", params=params, hooks=DENIED_HOOKS):
                    yield [shape_stats_row(row, account, conversions, STATS_MONEY_FIELDS) for row in page]
            return
        # Media plan id -> its last loaded day (YYYY-MM-DD, account-local). Saved with
        # the load package at the end of a successful extract, like dlt incremental state.
        last_days: dict[str, str] = dlt.current.resource_state().setdefault("last_date_by_media_plan", {})
        for plan in plans:
            plan_id = str(plan["id"])
            account = accounts()[str(plan["account_id"])]
            # Contract: the last RESTATEMENT_DAYS days may still change: re-read them.
            first = restated_from(last_days.get(plan_id), restatement_days, first_day)
            start, end = stats_window(first, account["timezone"])
            params = {"aggregate": "day", "level": level, "start_date": start, "end_date": end, "limit": PAGE_SIZE}
            newest = last_days.get(plan_id)
            # Doc "Get statistics about specific Media plan": level=campaign|ad gives
            # one row per object and day of the whole plan (contract: `date`, the
            # object's id and client_id on each row).
            for page in client.paginate(f"clients/{plan_id}/statistics", params=params, hooks=DENIED_HOOKS):
                rows = [shape_stats_row(row, account, conversions, STATS_MONEY_FIELDS) for row in page]
                newest = max([newest or "", *(r["date"] for r in rows)]) or None
                yield rows
            if newest:
                last_days[plan_id] = newest

    return stats
