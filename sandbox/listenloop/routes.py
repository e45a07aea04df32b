"""ListenLoop's HTTP surface. Doc references are to
/work/shared/api-docs/listenloop.md; "contract" is /work/shared/api-docs/README.md.
"""

from __future__ import annotations

import hmac
from typing import Any

from sandbox.core import HTTPError, Request, Response, Router
from sandbox.listenloop.models import API_EMAIL, API_TOKEN, ListenLoopStore, ValidationFailed, clean_attributes

PER_PAGE = 25  # contract: per_page defaults to 25 ...
MAX_PER_PAGE = 100  # ... and is capped at 100
# Doc-shaped mode: the index endpoint is undocumented, so a real server may cap
# per_page lower than the contract says; a client must not end on a short page.
DOC_SHAPES_MAX_PER_PAGE = 50

# Sandbox choice (the doc shows no error bodies): Devise's message, which the
# X-User-Token/X-User-Email scheme (simple_token_authentication) falls back to.
UNAUTHORIZED = {"error": "You need to sign in or sign up before continuing."}


def authenticate(request: Request) -> None:
    """Doc "Authentication": both headers on every request, and both must match."""
    token = request.header("x-user-token") or ""
    email = request.header("x-user-email") or ""
    token_ok = hmac.compare_digest(token.encode(), API_TOKEN.encode())
    email_ok = hmac.compare_digest(email.lower().encode(), API_EMAIL.encode())
    if not (token_ok and email_ok):
        raise HTTPError(401, UNAUTHORIZED)


def campaign_body(request: Request, creating: bool) -> dict[str, Any]:
    """The doc's ``{"campaign": {...}}`` body, validated (Rails-style 400/422 errors)."""
    payload = request.json()
    if not isinstance(payload, dict) or not payload.get("campaign"):
        raise HTTPError(400, {"error": "param is missing or the value is empty: campaign"})
    try:
        return clean_attributes(payload["campaign"], creating)
    except ValidationFailed as exc:
        raise HTTPError(422, {"errors": exc.errors}) from None


def build_router(store: ListenLoopStore) -> Router:
    router = Router()
    world = store.world

    def organization_campaigns() -> list[int]:
        return [c.id for c in store.visible(world.now)]

    def find(request: Request) -> Any:
        try:
            campaign_id = int(request.params["campaign_id"])
        except ValueError:
            campaign_id = -1
        campaign = store.get(campaign_id, world.now)
        if campaign is None:
            raise HTTPError(404, {"error": "Not Found"})
        return campaign

    @router.route("GET", "/campaigns")
    def list_campaigns(request: Request) -> Response:
        """Contract: JSON array, page from 1, per_page default 25 capped at 100
        (50 in doc-shaped mode), id order."""
        authenticate(request)
        page = request.int_arg("page", 1, minimum=1)
        cap = DOC_SHAPES_MAX_PER_PAGE if world.doc_shapes else MAX_PER_PAGE
        per_page = request.int_arg("per_page", PER_PAGE, minimum=1, maximum=cap)
        campaigns = store.visible(world.now)
        ids = [c.id for c in campaigns]
        chunk = campaigns[(page - 1) * per_page : page * per_page]
        return Response(200, [store.render(c, world.now, ids) for c in chunk])

    @router.route("GET", "/campaigns/{campaign_id}")
    def show_campaign(request: Request) -> Response:
        authenticate(request)
        return Response(200, store.render(find(request), world.now, organization_campaigns()))

    @router.route("POST", "/campaigns")
    def create_campaign(request: Request) -> Response:
        """Doc "Create"; 201 is a sandbox choice (the doc gives no status code)."""
        authenticate(request)
        campaign = store.create(campaign_body(request, creating=True), world.now)
        return Response(201, store.render(campaign, world.now, organization_campaigns()))

    def edit_campaign(request: Request) -> Response:
        """Doc "Edit Campaign": PUT; PATCH too, as Rails resources route both."""
        authenticate(request)
        campaign = find(request)
        store.edit(campaign, campaign_body(request, creating=False), world.now)
        return Response(200, store.render(campaign, world.now, organization_campaigns()))

    router.add("PUT", "/campaigns/{campaign_id}", edit_campaign)
    router.add("PATCH", "/campaigns/{campaign_id}", edit_campaign)
    return router
