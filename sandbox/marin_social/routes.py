"""Marin Social HTTP routes: parse the request, ask the store, shape the answer
like the vendor doc's examples (``/work/shared/api-docs/marin-social.txt``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlencode

from sandbox.core import HTTPError, JSONBytes, Request, Response, Router, to_json
from sandbox.marin_social.models import (
    AGGREGATES,
    LEVELS,
    TWITTER_FUNDING_INSTRUMENTS,
    Ad,
    AdSet,
    Campaign,
    MarinStore,
    MediaPlan,
    nb_pages,
    stats_row,
)
from sandbox.world import Account

T = TypeVar("T")
DEFAULT_LIMIT = 100
MAX_LIMIT = 300  # vendor doc: "The maximum number of resource by page (Max 300)"
REPORT_URL = "https://social.marinsoftware.com/report/en/spent/"
_CAMPAIGN_NAMING = "{campaign-name}-{age-min}-{age-max}-{country}-{interest}"
_ADS_NAMING = "{campaign-name}-{age-min}-{age-max}-{picture}-{title}"
# The doc's Twitter campaign example ("Get all Campaigns of your agency", campaign 2).
_TW_CAMPAIGN_NAMING = "{campaign-name}-{country}-{gender}-{interest}-{twitteraccounts}-{keywords}"
_TW_ADS_NAMING = "{campaign-name}-{country}-{gender}-{interest}-{twitteraccounts}-{keywords}-{tweetId}"
_CITY = {"America/New_York": "New York", "America/Los_Angeles": "Los Angeles", "Europe/Berlin": "Berlin", "Europe/London": "London"}
_COUNTRY = {"America/New_York": "US", "America/Los_Angeles": "US", "Europe/Berlin": "DE", "Europe/London": "GB"}


def fail(status: int, message: str) -> HTTPError:
    """Vendor doc: on 4xx "response body contains an array with a message key"."""
    return HTTPError(status, {"message": message})


class MarinRouter(Router):
    """Checks the ``key`` query parameter before routing (auth comes first, even for
    unknown paths) and gives the router's own errors the vendor's ``message`` shape."""

    def __init__(self, api_key: str) -> None:
        super().__init__()
        self.api_key = api_key

    def dispatch(self, request: Request) -> Response:
        if request.arg("key") != self.api_key:
            # Vendor doc, status codes: "403 Access denied". No 401 is documented.
            raise fail(403, "Access denied")
        try:
            return super().dispatch(request)
        except HTTPError as exc:
            if isinstance(exc.body, dict) and "error" in exc.body:
                raise fail(exc.status, str(exc.body["error"])) from None
            raise


# ------------------------------------------------------------------ serialisers
def account_json(store: MarinStore, a: Account) -> dict[str, Any]:
    if a.currency is None:
        # Doc "Get all Accounts", the Twitter example: no currency, no country, a
        # funding_instruments list. The default mode shows the missing ones as null.
        out: dict[str, Any] = {"id": a.id, "network_id": store.account_network_id[a.id], "name": a.name}
        if not store.world.doc_shapes:
            out.update({"currency": None, "country": None})
        out.update({"timezone": a.timezone, "funding_instruments": list(TWITTER_FUNDING_INSTRUMENTS), "active": True, "src": "tw"})
        return out
    return {
        "id": a.id,
        "network_id": store.account_network_id[a.id],
        "name": a.name,
        "currency": a.currency,
        "timezone": a.timezone,
        "country": _COUNTRY.get(a.timezone, "US"),
        "active": True,
        "src": "fb",
    }


def plan_json(p: MediaPlan) -> dict[str, Any]:
    return {
        "id": p.id,
        "margin_type": 0,
        "advertiser_id": p.advertiser_id,
        "deleted": False,
        "general_objective": p.general_objective,
        "archived": False,
        "name": p.name,
        "account_network_id": p.account_network_id,
        "ads_naming": _ADS_NAMING,
        "margin_value": 0,
        "io_number": p.io_number,
        "campaign_naming": _CAMPAIGN_NAMING,
        "account_id": p.account_id,
        "autopause_value": "0",
        "business_manager_id": p.business_manager_id,
        "src": p.src,
        "url_reporting": REPORT_URL + p.report_hash,
        "url_connection": f"https://social.marinsoftware.com/datagrid/{p.id}",
    }


def campaign_json(store: MarinStore, c: Campaign, with_category: bool = True) -> dict[str, Any]:
    # Start: midnight in the account's timezone of its first day of statistics,
    # shown in UTC with the doc's "+0000" offset format.
    start = store.midnight(c.account_id, store.world.day(c.created_day))
    if c.src == "tw":
        # Exactly the keys of the doc's Twitter campaign example: lifetime_budget and
        # funding_instrument_id, no budget_type, budget or special_ad_category.
        return {
            "client_id": c.client_id,
            "daily_budget": c.daily_budget,
            "url_reporting": REPORT_URL + c.report_hash,
            "src": "tw",
            "lifetime_budget": c.lifetime_budget,
            "archived": False,
            "id": c.id,
            "name": c.name,
            "start_date": start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000"),
            "campaign_naming": _TW_CAMPAIGN_NAMING,
            "ads_naming": _TW_ADS_NAMING,
            "deleted": False,
            "account_id": c.account_id,
            "funding_instrument_id": TWITTER_FUNDING_INSTRUMENTS[0],
            "status": "pause",
        }
    out: dict[str, Any] = {
        "status": "play",
        "account_id": c.account_id,
        "deleted": False,
        "campaign_naming": _CAMPAIGN_NAMING,
        "start_date": start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000"),
        "ads_naming": _ADS_NAMING,
        "budget_type": "daily",
        "url_reporting": REPORT_URL + c.report_hash,
        "daily_budget": c.daily_budget,
        "client_id": c.client_id,
        "budget": c.daily_budget,
        "name": c.name,
        "id": c.id,
        "archived": False,
        "src": "fb",
    }
    # The doc's agency-wide list example has no special_ad_category; the media plan
    # list and the detail examples have it.
    if with_category:
        out["special_ad_category"] = c.special_ad_category
    return out


def adset_json(s: AdSet) -> dict[str, Any]:
    return {
        "id": s.id,
        "daily_budget": s.daily_budget,
        "name": s.name,
        "operation_status": "sync",
        "status": "play",
        "bid": s.bid,
        "promoted_object": s.promoted_object,
        "adset_billing_event": "impressions",
        "adset_optimization_goal": s.optimization_goal,
        "computed_status": "play",
    }


def ad_json(store: MarinStore, ad: Ad) -> dict[str, Any]:
    tz = store.account_by_id[ad.account_id].timezone
    out: dict[str, Any] = {
        "id": ad.id,
        "deleted": False,
        "type": ad.type,
        "target": {"location": [{"label": _CITY.get(tz, "New York"), "type": "city"}], "age": ["25-54"], "gender": "both"},
        "placement": {
            "device": ["mobile", "desktop"],
            "publisher": ["facebook", "network", "messenger"],
            "position": ["feed", "rhs", "instant_article", "network_classic", "messenger_home"],
        },
        "name": ad.name,
        "status": "play",
        "synchro_status": "active",
        "bid": ad.bid,
        "adset_billing_event": "impressions",
        "adset_optimization_goal": "link_clicks",
        "adset_bid_strategy": "lowest_cost_with_bid_cap",
        "url": f"https://www.acme-outdoor.example/landing/{ad.campaign_id}",
        "src": "fb",
    }
    if ad.type == "page_post_ad":  # the doc's page post example carries the creative
        out.update(
            {
                "headline": ad.name,
                "message": "Gear up for the outdoors with Acme.",
                "description": "Free shipping on orders over 50.",
                "page": ad.page,
            }
        )
    return out


# ------------------------------------------------------------------- helpers
def paginate(request: Request, items: Sequence[T], render: Callable[[T], dict[str, Any]]) -> dict[str, Any]:
    """Vendor doc, "Pagination": resources under ``data``, pagination under ``range``.
    ``range.next`` is the absolute URL of the next page carrying only ``limit``,
    ``key`` and ``page``, as every doc example shows: NOT the request's other
    parameters (``level``, ``aggregate``, dates), so a client must ask for page N
    itself. Null on the last page (contract). Only the page's items are rendered."""
    chunk, page_range = _page(request, items)
    return {"data": [render(item) for item in chunk], "range": page_range}


def paginate_text(request: Request, items: Sequence[T], render: Callable[[T], str]) -> JSONBytes:
    """``paginate`` for rows rendered as JSON text (statistics): the same bytes."""
    chunk, page_range = _page(request, items)
    return JSONBytes(f'{{"data":[{",".join(map(render, chunk))}],"range":{to_json(page_range)}}}'.encode())


def _page(request: Request, items: Sequence[T]) -> tuple[Sequence[T], dict[str, Any]]:
    limit = request.int_arg("limit", DEFAULT_LIMIT, minimum=1, maximum=MAX_LIMIT)  # above 300: capped
    page = request.int_arg("page", 1, minimum=1)
    chunk = items[(page - 1) * limit : page * limit]
    more = page * limit < len(items)
    return chunk, {
        "total": len(items),
        "limit": limit,
        "nb_pages": nb_pages(len(items), limit),
        "page": page,
        "results": len(chunk),
        "next": _next_url(request, limit, page + 1) if more else None,
    }


def _next_url(request: Request, limit: int, page: int) -> str:
    query = {"limit": limit, "key": request.arg("key") or "", "page": page}
    return f"{request.base_url}{request.path}?{urlencode(query)}"


def _plan(store: MarinStore, request: Request) -> MediaPlan:
    plan = store.plan(request.params["mp"])
    if plan is None:
        raise fail(404, f"Media plan {request.params['mp']} not found")
    return plan


def _campaign(store: MarinStore, request: Request) -> tuple[MediaPlan, Campaign]:
    plan = _plan(store, request)
    campaign = store.campaign_by_id.get(request.params["cid"])
    if campaign is None or campaign.client_id != plan.id:
        raise fail(404, f"Campaign {request.params['cid']} not found")
    return plan, campaign


def _adset(store: MarinStore, request: Request) -> tuple[MediaPlan, Campaign, AdSet]:
    plan, campaign = _campaign(store, request)
    adset = store.adset_by_id.get(request.params["sid"])
    if adset is None or adset.campaign_id != campaign.id:
        raise fail(404, f"Ad set {request.params['sid']} not found")
    return plan, campaign, adset


def _ad(store: MarinStore, request: Request, adset: AdSet | None, campaign: Campaign) -> Ad:
    ad = store.ad_by_id.get(request.params["aid"])
    if ad is None or ad.campaign_id != campaign.id or (adset is not None and ad.adset_id != adset.id):
        raise fail(404, f"Ad {request.params['aid']} not found")
    return ad


def _timestamp(request: Request, name: str) -> datetime | None:
    raw = request.arg(name)
    if raw is None or raw == "":
        return None
    try:
        return datetime.fromtimestamp(int(raw), UTC)
    except (ValueError, OverflowError, OSError):
        raise fail(400, f"{name} must be a UNIX timestamp") from None


def _statistics(store: MarinStore, request: Request, plan: MediaPlan, ads: list[Ad], scope: str) -> JSONBytes:
    """Vendor doc, "Get statistics about ...": aggregate (period|day|month, default
    period), start_date/end_date (UNIX seconds; contract: end exclusive), level
    (default: the endpoint's own object), limit/page. A day belongs to the window
    when its midnight in the account's timezone lies in [start_date, end_date)."""
    aggregate = request.arg("aggregate") or "period"
    if aggregate not in AGGREGATES:
        raise fail(400, f"aggregate must be one of {', '.join(AGGREGATES)}")
    level = request.arg("level") or scope
    if level == "channel_connect":
        raise fail(400, "level channel_connect is not available for this media plan")
    if level not in LEVELS or LEVELS.index(level) < LEVELS.index(scope):
        raise fail(400, f"level must be one of {', '.join(LEVELS[LEVELS.index(scope):])}")
    start, end = _timestamp(request, "start_date"), _timestamp(request, "end_date")
    if aggregate != "period" and start is None:
        # Doc: start_date is optional only "if aggregate is period".
        raise fail(400, "start_date is required when aggregate is day or month")
    if start is not None and end is not None and end <= start:
        raise fail(400, "end_date must be after start_date")
    return paginate_text(request, store.statistics(plan, ads, level, aggregate, start, end), lambda row: stats_row(*row))


# -------------------------------------------------------------------- routes
def build_router(store: MarinStore, api_key: str) -> MarinRouter:
    router = MarinRouter(api_key)

    @router.route("GET", "/accounts")
    def list_accounts(request: Request) -> Any:
        return paginate(request, store.accounts, lambda a: account_json(store, a))

    @router.route("GET", "/accounts/{account_id}")
    def get_account(request: Request) -> Any:
        account = store.account_by_id.get(request.params["account_id"])
        if account is None:
            raise fail(404, f"Account {request.params['account_id']} not found")
        return {"data": account_json(store, account)}

    @router.route("GET", "/advertisers")
    def list_advertisers(request: Request) -> Any:
        return paginate(request, store.advertisers, asdict)

    @router.route("GET", "/advertisers/{advertiser_id}")
    def get_advertiser(request: Request) -> Any:
        advertiser = store.advertiser_by_id.get(request.params["advertiser_id"])
        if advertiser is None:
            raise fail(404, f"Advertiser {request.params['advertiser_id']} not found")
        return asdict(advertiser)  # the doc's example is the bare object, no "data"

    @router.route("GET", "/clients")
    def list_plans(request: Request) -> Any:
        return paginate(request, store.media_plans, plan_json)

    @router.route("GET", "/clients/{mp}")
    def get_plan(request: Request) -> Any:
        return {"data": plan_json(_plan(store, request))}

    @router.route("GET", "/clients/{mp}/statistics")
    def plan_statistics(request: Request) -> Any:
        plan = _plan(store, request)
        ads = [ad for c in store.campaigns_of(plan.id) for ad in store.ads_of_campaign(c.id)]
        return _statistics(store, request, plan, ads, "client")

    @router.route("GET", "/campaigns")
    def list_all_campaigns(request: Request) -> Any:
        return paginate(request, store.campaigns, lambda c: campaign_json(store, c, with_category=False))

    @router.route("GET", "/clients/{mp}/campaigns")
    def list_plan_campaigns(request: Request) -> Any:
        plan = _plan(store, request)
        return paginate(request, store.campaigns_of(plan.id), lambda c: campaign_json(store, c))

    @router.route("GET", "/clients/{mp}/campaigns/{cid}")
    def get_campaign(request: Request) -> Any:
        return {"data": campaign_json(store, _campaign(store, request)[1])}

    @router.route("GET", "/clients/{mp}/campaigns/{cid}/statistics")
    def campaign_statistics(request: Request) -> Any:
        plan, campaign = _campaign(store, request)
        return _statistics(store, request, plan, store.ads_of_campaign(campaign.id), "campaign")

    @router.route("GET", "/clients/{mp}/campaigns/{cid}/adsets")
    def list_adsets(request: Request) -> Any:
        campaign = _campaign(store, request)[1]
        if campaign.src != "fb" and store.world.doc_shapes:
            # Doc: ad sets are "Only available for Facebook Campaigns"; what GET
            # answers for another campaign is unsaid: doc mode refuses (404), the
            # default mode answers an empty list.
            raise fail(404, f"Campaign {campaign.id} has no ad sets (src {campaign.src})")
        return paginate(request, store.adsets_by_campaign[campaign.id], adset_json)

    @router.route("GET", "/clients/{mp}/campaigns/{cid}/adsets/{sid}")
    def get_adset(request: Request) -> Any:
        return {"data": adset_json(_adset(store, request)[2])}

    @router.route("GET", "/clients/{mp}/campaigns/{cid}/adsets/{sid}/statistics")
    def adset_statistics(request: Request) -> Any:
        plan, _, adset = _adset(store, request)
        return _statistics(store, request, plan, store.ads_by_adset[adset.id], "adset")

    @router.route("GET", "/clients/{mp}/campaigns/{cid}/ads")
    def list_campaign_ads(request: Request) -> Any:
        campaign = _campaign(store, request)[1]
        return paginate(request, store.ads_of_campaign(campaign.id), lambda ad: ad_json(store, ad))

    @router.route("GET", "/clients/{mp}/campaigns/{cid}/adsets/{sid}/ads")
    def list_adset_ads(request: Request) -> Any:
        adset = _adset(store, request)[2]
        return paginate(request, store.ads_by_adset[adset.id], lambda ad: ad_json(store, ad))

    @router.route("GET", "/clients/{mp}/campaigns/{cid}/adsets/{sid}/ads/{aid}")
    def get_ad(request: Request) -> Any:
        _, campaign, adset = _adset(store, request)
        return ad_json(store, _ad(store, request, adset, campaign))  # bare object, as in the doc

    # The doc's "HTTP Request" line has no ad set in the path, its example's
    # range.next has one: both are served.
    @router.route("GET", "/clients/{mp}/campaigns/{cid}/ads/{aid}/statistics")
    def ad_statistics(request: Request) -> Any:
        plan, campaign = _campaign(store, request)
        return _statistics(store, request, plan, [_ad(store, request, None, campaign)], "ad")

    @router.route("GET", "/clients/{mp}/campaigns/{cid}/adsets/{sid}/ads/{aid}/statistics")
    def adset_ad_statistics(request: Request) -> Any:
        plan, campaign, adset = _adset(store, request)
        return _statistics(store, request, plan, [_ad(store, request, adset, campaign)], "ad")

    return router
