"""Loops (email audience): the contacts of the emails we know.

No endpoint lists contacts (contract): Loops is read one email at a time with
``contacts/find``. The emails are the configured list plus those found in other
raw tables of the same warehouse (``email_columns``); the lookups already made
are remembered in source state so a run asks only for new, stale or
not-yet-found emails (see docs/sources/loops.md).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import dlt
import pendulum
from dlt.sources.rest_api import RESTAPIConfig, rest_api_resources
from requests import Response

from sources._shared.http import SourceHTTPError, entity_error_hook, session_for
from sources.loops.helpers import due_emails, email_columns_to_read, log, normalize_email, parse_emails, warehouse_emails, was_found
from sources.loops.settings import (
    DEFAULT_BASE_URL,
    ERROR_DETAIL_FIELD,
    FIND_PATH,
    RATE_PER_SECOND,
    REFRESH_DAYS,
    RETRY_NOT_FOUND_HOURS,
    TABLE_COLUMNS,
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
    warehouse: str | None = None,
    email_columns: Any = None,  # "dataset.table.column" list; None: settings.EMAIL_COLUMNS
) -> Any:
    columns = email_columns_to_read(email_columns)
    # Read now, before dlt opens the warehouse for this source's own load.
    candidates = sorted(set(parse_emails(emails)) | set(warehouse_emails(warehouse, columns)))

    # Hand-written: rest_api has no resource for "a list of inputs"; this parent
    # yields the emails due for a lookup and the child below calls find for each.
    @dlt.resource(name="emails", selected=False)
    def due() -> Iterator[list[dict[str, Any]]]:
        lookups: dict[str, dict[str, Any]] = dlt.current.source_state().setdefault("lookups", {})
        todo = due_emails(candidates, lookups, pendulum.now("UTC"), refresh_days, retry_not_found_hours)
        log.info("loops: %d emails known, %d remembered, %d to look up", len(candidates), len(lookups), len(todo))
        for email in todo:
            yield [{"email": email}]  # a child resource iterates its parent's pages

    def record_lookup(response: Response, *args: Any, **kwargs: Any) -> None:
        # Runs only on answers entity_error_hook let through (2xx). Only an answer
        # moves an email's schedule: a skipped lookup (error after retries) leaves
        # its state as it was, so it is due again next run and its contact stays.
        email = normalize_email(parse_qs(urlsplit(response.url).query).get("email", [""])[0]) or ""
        body = response.json()
        if not isinstance(body, list):
            # Doc "Find": "will always return an array".
            where = f"loops: GET {urlsplit(response.url).path} answered {response.status_code}"
            raise SourceHTTPError(f"{where} with a JSON {type(body).__name__}, not the documented array")
        lookups = dlt.current.source_state()["lookups"]
        if not body and was_found(lookups.get(email)):
            # Found before, [] now: deleted in Loops. A tombstone, which the merge
            # deletes (hard_delete). Rewriting the body in a response action is
            # dlt's documented way to reshape a response.
            body.append({"email": email, DELETED: True})
            response._content = json.dumps(body).encode()
        # State is saved with the load, so a failed run remembers nothing.
        lookups[email] = {"at": pendulum.now("UTC").isoformat(), "found": any(not c.get(DELETED) for c in body)}

    def stamp(contact: dict[str, Any]) -> dict[str, Any]:
        # The key is the email we looked up (trimmed, lower-case): the doc shows no
        # contact id, and find answers at most one contact per email.
        contact["email"] = contact.pop(PARENT_EMAIL)
        contact["looked_up_at"] = pendulum.now("UTC")
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
                "primary_key": "email",
                "write_disposition": "merge",
                "columns": {**TABLE_COLUMNS["contacts"], DELETED: {"data_type": "bool", "hard_delete": True}},
                "include_from_parent": ["email"],
                "endpoint": {
                    "path": FIND_PATH,
                    # Doc "Find": ?email=URI_ENCODED_EMAIL (requests encodes the @).
                    "params": {"email": "{resources.emails.email}"},
                    # Doc: "will always return an array": [] or [contact].
                    "data_selector": "$",
                    "paginator": "single_page",
                    # In this order: an error answer for one email (400, 404, or a
                    # 429/5xx after retries) is counted in ops.runs and that email
                    # skipped before record_lookup could touch its state; 401/403
                    # fail the source.
                    "response_actions": [entity_error_hook("loops", ERROR_DETAIL_FIELD), record_lookup],
                },
                "processing_steps": [{"map": stamp}],
            },
        ],
    }
    return rest_api_resources(config)
