"""Loops' store: one contact per ``world.contact_emails`` entry, created over the
history (and a little beyond, so ``advance`` reveals new ones), the overlays that
API writes leave (created, updated, deleted contacts), the events sent, and the
per-team rate limiter. No HTTP here.

A world contact is a pure function of (seed, index): it is findable once its
``createdAt`` is <= ``world.now``. Writes replace it with an overlay entry.
"""

from __future__ import annotations

import re
import string
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sandbox.world import HISTORY_DAYS, World

API_KEY = "sandbox-loops-key-0001"  # fixed sandbox credential, never a real one
RATE_LIMIT = 10  # doc "Rate Limiting": 10 requests per second per team
RATE_WINDOW = 1.0  # seconds
# Contacts are created over the history and the ten days after "now" at creation.
CREATION_SPAN_DAYS = HISTORY_DAYS + 10

# Standard contact fields (the doc's Add body minus the custom favoriteColor, plus
# subscribed/userId); anything else in a body is a custom property.
STANDARD_FIELDS = ("email", "firstName", "lastName", "source", "subscribed", "userGroup", "userId")
# Doc-shaped mode: a contact carries only what the doc names - the fields of its
# Add/Update bodies (always present, null when unset), `userId` (doc "Delete") and
# custom properties (doc: "additional fields") only when set. No `id`,
# `subscribed` or `createdAt`: the doc shows no contact object with them.
DOC_FIELDS = ("email", "firstName", "lastName", "userGroup", "source")
UNDOCUMENTED_FIELDS = ("id", "subscribed", "createdAt")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SOURCES = ("Signup form", "Webinar", "Checkout", "Import", "API")
_GROUPS = ("", "Customers", "Leads", "Partners", "Founders")
_UTM_SOURCES = ("listenloop", "facebook", "instagram", "newsletter", "google")


def iso_ms(moment: datetime) -> str:
    """createdAt format (sandbox choice: the doc shows no contact object): UTC, ms, Z."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def valid_email(value: Any) -> bool:
    # Consecutive dots are not allowed in an unquoted local part (RFC 5321): a
    # malformed address that a loose client-side check lets through (sandbox).
    return isinstance(value, str) and bool(EMAIL_RE.match(value)) and ".." not in value


class RateLimiter:
    """Sliding one-second window per API key. ``clock`` is injectable for tests."""

    def __init__(self, limit: int = RATE_LIMIT, window: float = RATE_WINDOW, clock: Callable[[], float] | None = None):
        self.limit = limit
        self.window = window
        self.clock = clock or time.monotonic
        self._hits: dict[str, deque[float]] = {}

    def allow(self, key: str) -> bool:
        """Record a request for ``key``; False when it is over the limit (not recorded)."""
        now = self.clock()
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= self.limit:
            return False
        hits.append(now)
        return True


@dataclass
class Event:
    email: str
    event_name: str
    properties: dict[str, Any]
    at: datetime


class LoopsStore:
    def __init__(self, world: World, clock: Callable[[], float] | None = None) -> None:
        self.world = world
        self.limiter = RateLimiter(clock=clock)
        # email (lower-case) -> index into world.contact_emails
        self._index = {email.lower(): i for i, email in enumerate(world.contact_emails)}
        # email (lower-case) -> contact written through the API, or None once deleted.
        self._overlay: dict[str, dict[str, Any] | None] = {}
        self._created_at: dict[str, datetime] = {}  # when each world contact appears
        self.events: list[Event] = []
        self._api_contacts = 0  # sequence for ids of contacts made through the API

    # ----------------------------------------------------------------- the world
    def world_created_at(self, index: int) -> datetime:
        rng = self.world.rng("loops-contact-created", index)
        return self.world.at(rng.uniform(0, CREATION_SPAN_DAYS)).replace(microsecond=rng.randrange(1000) * 1000)

    def world_contact(self, index: int) -> dict[str, Any]:
        """A world contact as find returns it: pure function of (seed, index)."""
        email = self.world.contact_emails[index]
        rng = self.world.rng("loops-contact", index)
        first, _, rest = email.partition("@")[0].partition(".")
        utm_campaign = None
        if rng.random() < 0.35:
            # Cross-API link: ad campaigns' utm values (and some that name none).
            pool = [c.utm_value for c in self.world.ad_campaigns] + list(self.world.UNATTRIBUTED_UTMS)
            utm_campaign = rng.choice(pool)
        return {
            "id": self._cuid(rng),
            "email": email,
            "firstName": first.capitalize(),
            "lastName": rest.rstrip(string.digits).capitalize(),
            "source": rng.choice(_SOURCES),
            "subscribed": rng.random() < 0.85,
            "userGroup": rng.choice(_GROUPS),
            "userId": f"usr_{index + 1:06d}" if rng.random() < 0.6 else None,
            "createdAt": iso_ms(self.world_created_at(index)),
            "utmCampaign": utm_campaign,
            "utmSource": rng.choice(_UTM_SOURCES) if utm_campaign else None,
        }

    @staticmethod
    def _cuid(rng: Any) -> str:
        # Loops contact ids look like cuids: "c" + 24 lower-case alphanumerics.
        return "c" + "".join(rng.choice(string.ascii_lowercase + string.digits) for _ in range(24))

    # ------------------------------------------------------------------ reading
    def find(self, email: str, now: datetime) -> dict[str, Any] | None:
        key = email.lower()
        if key in self._overlay:
            contact = self._overlay[key]
            return dict(contact) if contact is not None else None
        index = self._index.get(key)
        if index is None or self.world_created_at(index) > now:
            return None
        return self.world_contact(index)

    def shape(self, contact: dict[str, Any]) -> dict[str, Any]:
        """A contact as ``find`` answers it: whole, or in doc-shaped mode as the doc shows one."""
        if not self.world.doc_shapes:
            return contact
        out = {k: contact.get(k) or None for k in DOC_FIELDS}
        out["email"] = contact["email"]
        rest = {k: v for k, v in contact.items() if k not in DOC_FIELDS and k not in UNDOCUMENTED_FIELDS}
        out.update({k: v for k, v in rest.items() if v is not None})
        return out

    def find_by_user_id(self, user_id: str, now: datetime) -> dict[str, Any] | None:
        for contact in self._overlay.values():
            if contact is not None and contact.get("userId") == user_id:
                return contact
        # World user ids are "usr_<index+1>": the index is in the id.
        match = re.fullmatch(r"usr_(\d{6})", user_id)
        if match:
            index = int(match.group(1)) - 1
            if 0 <= index < len(self.world.contact_emails):
                contact = self.find(self.world.contact_emails[index], now)
                if contact is not None and contact.get("userId") == user_id:
                    return contact
        return None

    # ------------------------------------------------------------------ writing
    def create(self, fields: dict[str, Any], now: datetime) -> dict[str, Any]:
        """A new contact; standard defaults are a sandbox choice modelled on Loops."""
        self._api_contacts += 1
        contact: dict[str, Any] = {
            "id": self._cuid(self.world.rng("loops-api-contact", self._api_contacts)),
            "email": fields["email"],
            "firstName": None,
            "lastName": None,
            "source": "API",
            "subscribed": True,
            "userGroup": "",
            "userId": None,
            "createdAt": iso_ms(now),
            "utmCampaign": None,
            "utmSource": None,
        }
        contact.update({k: v for k, v in fields.items() if k != "id"})
        self._overlay[fields["email"].lower()] = contact
        return contact

    def update(self, contact: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
        merged = {**contact, **{k: v for k, v in fields.items() if k not in ("id", "createdAt")}}
        merged["email"] = contact["email"]  # the key: an update never renames
        self._overlay[contact["email"].lower()] = merged
        return merged

    def delete(self, contact: dict[str, Any]) -> None:
        self._overlay[contact["email"].lower()] = None

    def record_event(self, email: str, event_name: str, properties: dict[str, Any], now: datetime) -> None:
        self.events.append(Event(email, event_name, properties, now))

    # -------------------------------------------------------------------- truth
    def truth(self, now: datetime) -> dict[str, Any]:
        count = subscribed = 0
        emails = set(self._index) | set(self._overlay)
        for email in emails:
            contact = self.find(email, now)
            if contact is not None:
                count += 1
                subscribed += bool(contact.get("subscribed"))
        return {"contacts": {"count": count, "subscribed": subscribed}, "events": {"count": len(self.events)}}
