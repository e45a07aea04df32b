"""InboxFirst HTTP routes: parse the request, ask the store, wrap in the envelope.

Every answer, errors included, is ``{"success", "data", "error_code",
"error_message"}`` (contract), except the campaign list in doc-shaped mode, which
is ``{"error_message", "data"}`` like the doc's example. Auth (HTTP Basic, contract) is checked before
routing, so an unknown path without credentials is a 401, not a 404.
"""

from __future__ import annotations

import base64
import binascii
import math
from datetime import UTC, datetime
from typing import Any

from sandbox.core import HTTPError, Request, Response, Router
from sandbox.inboxfirst import models
from sandbox.inboxfirst.models import InboxFirstStore

MAX_PER_PAGE = 500  # doc: "the maximum allowed is 500"
DEFAULT_PER_PAGE = 100  # doc: "The per_page parameter defaults to 100"

# error_code values are a sandbox choice: the doc shows only successful answers.
_ERROR_CODES = {400: "invalid_parameter", 401: "unauthorized", 404: "record_not_found", 405: "method_not_allowed"}


def envelope(data: Any, **extra: Any) -> dict[str, Any]:
    return {"success": True, "data": data, "error_code": None, "error_message": None, **extra}


def error(status: int, message: str, headers: dict[str, str] | None = None) -> HTTPError:
    body = {"success": False, "data": None, "error_code": _ERROR_CODES.get(status, "error"), "error_message": message}
    return HTTPError(status, body, headers)


class InboxFirstRouter(Router):
    """A Router that authenticates first and answers every error in the envelope."""

    def __init__(self, store: InboxFirstStore) -> None:
        super().__init__()
        self.store = store

    def dispatch(self, request: Request) -> Response:
        _authenticate(request)
        try:
            return super().dispatch(request)
        except HTTPError as exc:
            if isinstance(exc.body, dict) and "success" in exc.body:
                raise
            message = exc.body.get("error", "error") if isinstance(exc.body, dict) else str(exc.body)
            raise error(exc.status, message, exc.headers) from None


def _authenticate(request: Request) -> None:
    challenge = {"WWW-Authenticate": 'Basic realm="InboxFirst"'}
    header = request.header("authorization") or ""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise error(401, "HTTP Basic authentication required", challenge)
    try:
        user, sep, key = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise error(401, "malformed Basic credentials", challenge) from None
    if not sep or user != models.USERNAME or key != models.API_KEY:
        raise error(401, "invalid username or API key", challenge)


def _id(raw: str, what: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise error(404, f"{what} {raw!r} not found") from None


def _moment(request: Request, name: str) -> datetime | None:
    """started_at__start/__end: "A UNIX integer timestamp or ISO-8601 datetime string" (doc)."""
    raw = request.arg(name)
    if raw is None or raw == "":
        return None
    try:
        if raw.lstrip("-").isdigit():
            return datetime.fromtimestamp(int(raw), UTC)
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except (ValueError, OverflowError):
        raise error(400, f"{name} must be a UNIX timestamp or an ISO-8601 datetime") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _int_param(request: Request, name: str, default: int, minimum: int) -> int:
    raw = request.arg(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise error(400, f"{name} must be an integer") from None
    if value < minimum:
        raise error(400, f"{name} must be >= {minimum}")
    return value


def register(router: InboxFirstRouter) -> None:
    store = router.store

    def now() -> datetime:
        return store.world.now

    def campaign_or_404(raw: str) -> models.Campaign:
        campaign = store.campaign(_id(raw, "campaign"), now())
        if campaign is None:
            raise error(404, f"campaign {raw} not found")
        return campaign

    def list_campaigns(request: Request) -> Response:
        list_id = _id(request.params["mailing_list_id"], "mailing list")
        if list_id not in store.mailing_lists:
            raise error(404, f"mailing list {list_id} not found")
        start, end = _moment(request, "started_at__start"), _moment(request, "started_at__end")
        filtered = request.arg("started_at__start") is not None or request.arg("started_at__end") is not None
        rows = []
        for campaign in store.campaigns(now(), list_id):
            if filtered:
                # Doc: either key limits the list to sending/finished/cancelled/failed
                # campaigns; both bounds are inclusive ("earliest/latest ... to include").
                if campaign.started_at is None:
                    continue
                if (start and campaign.started_at < start) or (end and campaign.started_at > end):
                    continue
            rows.append(models.list_item(store, campaign, now()))
        if store.world.doc_shapes:
            # Exactly the doc's list example: no success, no error_code (contract).
            return Response(200, {"error_message": None, "data": rows})
        return Response(200, envelope(rows))

    def campaign_details(request: Request) -> Response:
        campaign = campaign_or_404(request.params["campaign_id"])
        return Response(200, envelope(models.details(store, campaign, now(), request.arg("include_engine_sendid") == "1")))

    def campaign_by_stat(request: Request) -> Response:
        campaign = store.campaign_by_stat(_id(request.params["stat_id"], "stat"), now())
        if campaign is None:
            raise error(404, f"stat {request.params['stat_id']} not found")
        return Response(200, envelope(models.details(store, campaign, now(), request.arg("include_engine_sendid") == "1")))

    def link_stats(request: Request) -> Response:
        campaign = campaign_or_404(request.params["campaign_id"])
        page = _int_param(request, "page", 0, 0)
        # Above the documented maximum we answer with 500 rows and say so in the
        # echoed per_page, as Rails' paginators do (sandbox choice; the doc gives no error).
        per_page = min(_int_param(request, "per_page", DEFAULT_PER_PAGE, 1), MAX_PER_PAGE)
        content_raw = request.arg("content_id")
        content_id = None
        if content_raw not in (None, ""):
            try:
                content_id = int(content_raw)  # type: ignore[arg-type]
            except ValueError:
                raise error(400, "content_id must be an integer") from None
        # ``scope`` appears only in the doc's example (scope=all) and is accepted as is:
        # every link is recorded here, so there is nothing else it could select.
        rows = store.link_rows(campaign, now(), request.arg("url") or None, content_id)
        body = {
            "success": True,
            "error_code": None,
            "error_message": None,
            "page": page,
            "per_page": per_page,
            "data": {"all_unclicked_links_recorded": True, "links": rows[page * per_page : (page + 1) * per_page]},
            "num_records": len(rows),
            "num_pages": math.ceil(len(rows) / per_page),
        }
        return Response(200, body)

    # The doc's examples use both /ga/api/v2/... and /ga/api/...; serve both.
    for base in ("/ga/api/v2", "/ga/api"):
        router.add("GET", f"{base}/mailing_lists/{{mailing_list_id}}/campaigns", list_campaigns)
        router.add("GET", f"{base}/campaigns/by_stat/{{stat_id}}", campaign_by_stat)
        router.add("GET", f"{base}/campaigns/{{campaign_id}}", campaign_details)
        router.add("GET", f"{base}/campaigns/{{campaign_id}}/link_stats", link_stats)
