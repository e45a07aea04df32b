"""Loops' HTTP surface (``/loops/api/v1/...``). Doc references are to
/work/shared/api-docs/loops.txt; "contract" is /work/shared/api-docs/README.md.

The doc shows request bodies but no response bodies or error shapes. Where it is
silent the sandbox answers like Loops' public API does: ``{"success": true, ...}``
on success and ``{"success": false, "message": ...}`` on failure (sandbox choice).
"""

from __future__ import annotations

import hmac
from typing import Any

from sandbox.core import HTTPError, Request, Response, Router
from sandbox.loops.models import API_KEY, STANDARD_FIELDS, LoopsStore, valid_email


def fail(status: int, message: str, headers: dict[str, str] | None = None) -> HTTPError:
    return HTTPError(status, {"success": False, "message": message}, headers)


def guard(store: LoopsStore, request: Request) -> None:
    """Auth first (contract: Bearer key), then the documented 10 req/s per team."""
    header = request.header("authorization") or ""
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(key.strip().encode(), API_KEY.encode()):
        raise fail(401, "Invalid API key")
    if not store.limiter.allow(key.strip()):
        # Retry-After: the doc does not mention it; the contract says it "may" be
        # sent, and the sandbox always sends 1 (one window) - a contract choice.
        raise fail(429, "Rate limit exceeded.", {"Retry-After": "1"})


def body_object(request: Request) -> dict[str, Any]:
    try:
        payload = request.json()
    except HTTPError:
        raise fail(400, "Invalid JSON body.") from None
    if not isinstance(payload, dict):
        raise fail(400, "Request body must be a JSON object.")
    return payload


def contact_fields(payload: dict[str, Any], skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """Standard and custom contact properties from a body, type-checked."""
    fields: dict[str, Any] = {}
    for key, value in payload.items():
        if key in skip:
            continue
        if key == "subscribed":
            if not isinstance(value, bool):
                raise fail(400, "subscribed must be a boolean.")
        elif key in STANDARD_FIELDS:
            if value is not None and not isinstance(value, str):
                raise fail(400, f"{key} must be a string.")
        elif not (value is None or isinstance(value, (str, int, float, bool))):
            # "You can add additional fields as you need": scalar values only.
            raise fail(400, f"Invalid value for contact property {key}.")
        fields[key] = value
    return fields


def required_email(payload: dict[str, Any]) -> str:
    email = payload.get("email")
    if email is None or email == "":
        raise fail(400, "email is required.")
    if not valid_email(email):
        raise fail(400, "Invalid email.")
    return str(email)


def build_router(store: LoopsStore) -> Router:
    router = Router()
    world = store.world

    @router.route("POST", "/api/v1/contacts/create")
    def create(request: Request) -> Response:
        """Doc "Add". 409 on an existing email/userId is a sandbox choice (doc silent)."""
        guard(store, request)
        payload = body_object(request)
        email = required_email(payload)
        fields = contact_fields(payload)
        user_id = fields.get("userId")
        if store.find(email, world.now) is not None or (user_id and store.find_by_user_id(user_id, world.now)):
            raise fail(409, "Email or userId is already on list.")
        contact = store.create(fields, world.now)
        return Response(200, {"success": True, "id": contact["id"]})

    @router.route("PUT", "/api/v1/contacts/update")
    def update(request: Request) -> Response:
        """Doc "Update": only email is required; an unknown email creates the contact."""
        guard(store, request)
        payload = body_object(request)
        email = required_email(payload)
        fields = contact_fields(payload)
        contact = store.find(email, world.now)
        contact = store.update(contact, fields) if contact is not None else store.create(fields, world.now)
        return Response(200, {"success": True, "id": contact["id"]})

    @router.route("GET", "/api/v1/contacts/find")
    def find(request: Request) -> Response:
        """Doc "Find": always an array, [] when none, [contact] when found (in
        doc-shaped mode with the doc's fields only, see ``LoopsStore.shape``)."""
        guard(store, request)
        email = request.arg("email")
        if not email:
            raise fail(400, "email is required.")
        if not valid_email(email):
            raise fail(400, "Invalid email.")
        contact = store.find(email, world.now)
        return Response(200, [store.shape(contact)] if contact is not None else [])

    @router.route("POST", "/api/v1/contacts/delete")
    def delete(request: Request) -> Response:
        """Doc "Delete": by email or by userId."""
        guard(store, request)
        payload = body_object(request)
        email, user_id = payload.get("email"), payload.get("userId")
        if email:
            if not valid_email(email):
                raise fail(400, "Invalid email.")
            contact = store.find(email, world.now)
        elif user_id:
            if not isinstance(user_id, str):
                raise fail(400, "userId must be a string.")
            contact = store.find_by_user_id(user_id, world.now)
        else:
            raise fail(400, "An email or userId is required.")
        if contact is None:
            raise fail(404, "Contact not found.")
        store.delete(contact)
        return Response(200, {"success": True, "message": "Contact deleted."})

    @router.route("POST", "/api/v1/events/send")
    def send_event(request: Request) -> Response:
        """Doc "Send": email and eventName required; unknown email adds the contact;
        other fields update the contact's properties."""
        guard(store, request)
        payload = body_object(request)
        event_name = payload.get("eventName")
        email = required_email(payload)
        if not isinstance(event_name, str) or not event_name.strip():
            raise fail(400, "eventName is required.")
        fields = contact_fields(payload, skip=("eventName",))
        contact = store.find(email, world.now)
        if contact is None:
            store.create(fields, world.now)
        elif len(fields) > 1:
            store.update(contact, fields)
        store.record_event(email, event_name, {k: v for k, v in fields.items() if k != "email"}, world.now)
        return Response(200, {"success": True})

    return router
