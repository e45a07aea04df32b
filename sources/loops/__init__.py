"""Loops (email audience): the contacts of the emails we know.

No endpoint lists contacts (contract): Loops is read one email at a time with
``contacts/find``. The emails are the configured list plus those found in other
raw tables of the same warehouse (Retreaver calls' ``email`` tag); the lookups
already made are remembered in source state so a run asks only for new, stale or
not-yet-found emails (see docs/sources/loops.md).
"""

from __future__ import annotations

import json
from typing import Any, Iterator, Optional
from urllib.parse import parse_qs, urlsplit

import dlt
import pendulum
from dlt.sources.rest_api import RESTAPIConfig, rest_api_resources
from requests import Response

from sources._shared.http import session_for
from sources._shared.schema import timestamp_columns
from sources.loops.helpers import due_emails, log, normalize_email, parse_emails, warehouse_emails
from sources.loops.settings import (
    DEFAULT_BASE_URL,
    EMAIL_COLUMNS,
    FIND_PATH,
    RATE_PER_SECOND,
    REFRESH_DAYS,
    RETRY_NOT_FOUND_HOURS,
    TIMESTAMP_FIELDS,
)

PARENT_EMAIL = "_emails_email"  # include_from_parent's name for the looked-up email
DELETED = "_loops_deleted"  # set only on tombstones of contacts deleted in Loops


@dlt.source(name="loops", max_table_nesting=0)
def loops_source(
    api_key: str = dlt.secrets.value,
    base_url: str = DEFAULT_BASE_URL,
    emails: Any = None,  # a list, or a string of emails separated by commas
    refresh_days: float = REFRESH_DAYS,
    retry_not_found_hours: float = RETRY_NOT_FOUND_HOURS,
    warehouse: Optional[str] = None,
) -> Any:
    # Read now, before dlt opens the warehouse for this source's own load.
    candidates = sorted(set(parse_emails(emails)) | set(warehouse_emails(warehouse, EMAIL_COLUMNS)))

    # email -> id of its contact, for the emails due this run that found one before.
    previous: dict[str, str] = {}

    # Hand-written: rest_api has no resource for "a list of inputs"; this parent
    # yields the emails due for a lookup and the child below calls find for each.
    @dlt.resource(name="emails", selected=False)
    def due() -> Iterator[list[dict[str, Any]]]:
        lookups: dict[str, dict[str, Any]] = dlt.current.source_state().setdefault("lookups", {})
        now = pendulum.now("UTC")
        todo = due_emails(candidates, lookups, now, refresh_days, retry_not_found_hours)
        log.info("loops: %d emails known, %d remembered, %d to look up", len(candidates), len(lookups), len(todo))
        for email in todo:
            if lookups.get(email, {}).get("id"):
                previous[email] = lookups[email]["id"]
            # Remembered as not found ([]) unless `remember` sees its contact. State
            # is saved with the load, so a failed run remembers nothing.
            lookups[email] = {"at": now.isoformat(), "id": None}
            yield [{"email": email}]  # a child resource iterates its parent's pages

    def tombstone(response: Response) -> None:
        # Doc "Find": [] when no contact has the email. For an email whose contact we
        # loaded, that contact was deleted in Loops (or replaced by a new one with
        # another id): add a tombstone, which the merge deletes (hard_delete).
        # Rewriting the body in a response action is dlt's documented way to reshape
        # a response; processing steps never see an empty answer.
        email = normalize_email(parse_qs(urlsplit(response.url).query).get("email", [""])[0])
        old = previous.get(email or "")
        body = response.json()
        if old and isinstance(body, list) and all(c.get("id") != old for c in body):
            body.append({"id": old, "email": email, DELETED: True})
            response._content = json.dumps(body).encode()

    def remember(contact: dict[str, Any]) -> dict[str, Any]:
        # Per found contact: stamp it and remember its id (refreshed in REFRESH_DAYS).
        email = contact.pop(PARENT_EMAIL)
        contact["looked_up_at"] = pendulum.now("UTC")
        if not contact.get(DELETED):
            dlt.current.source_state()["lookups"][email] = {"at": contact["looked_up_at"].isoformat(), "id": contact["id"]}
        return contact

    config: RESTAPIConfig = {
        "client": {
            "base_url": base_url.rstrip("/") + "/",
            # Contract: "Authorization: Bearer <api key>".
            "auth": {"type": "bearer", "token": api_key},
            # Doc "Rate Limiting": 10 requests/second per team; paced just under it.
            "session": session_for("loops", rate_per_second=RATE_PER_SECOND, secrets=[api_key]),
        },
        "resources": [
            due,
            {
                "name": "contacts",
                "primary_key": "id",
                "write_disposition": "merge",
                "columns": {**timestamp_columns(TIMESTAMP_FIELDS), DELETED: {"data_type": "bool", "hard_delete": True}},
                "include_from_parent": ["email"],
                "endpoint": {
                    "path": FIND_PATH,
                    # Doc "Find": ?email=URI_ENCODED_EMAIL (requests encodes the @).
                    "params": {"email": "{resources.emails.email}"},
                    # Doc: "will always return an array": [] or [contact].
                    "data_selector": "$",
                    "paginator": "single_page",
                    "response_actions": [{"status_code": 200, "action": tombstone}],
                },
                "processing_steps": [{"map": remember}],
            },
        ],
    }
    return rest_api_resources(config)
