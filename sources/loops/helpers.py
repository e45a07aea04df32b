"""Loops pieces dlt does not ship: where the emails to look up come from, and
which of them a run must look up (the API has no list endpoint, contract)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from sources.loops.settings import EMAIL_COLUMNS

log = logging.getLogger("marketing_etl.loops")

# Loose on purpose: only keeps junk ("n/a", "") away from contacts/find. A
# malformed address it lets through costs one request: find's error answer (400 in
# the sandbox; the doc shows none) skips that email and is counted in ops.runs.
_EMAIL = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+$")


def normalize_email(value: Any) -> str | None:
    """The lookup key: trimmed, lower-case (Loops matches emails case-insensitively), or None."""
    if not isinstance(value, str):
        return None
    email = value.strip().lower()
    return email if _EMAIL.match(email) else None


def emails_in(value: Any) -> list[str]:
    """The emails in one stored value. Retreaver's doc shows tag values holding
    several values separated by commas ("attempt": "<id>,<id>"), so split first."""
    if not isinstance(value, str):
        return []
    return [e for e in (normalize_email(v) for v in re.split(r"[,;\s]+", value)) if e]


def parse_email_columns(value: Any) -> tuple[tuple[str, str, str], ...]:
    """SOURCES__LOOPS__EMAIL_COLUMNS: "dataset.table.column" entries, as a list or
    one string separated by commas (or ready-made 3-tuples)."""
    if isinstance(value, str):
        text = value.strip()
        value = json.loads(text) if text.startswith("[") else re.split(r"[\s,;]+", text)
    out = []
    for entry in value or []:
        parts = tuple(entry.split(".")) if isinstance(entry, str) else tuple(entry)
        if len(parts) != 3 or not all(parts):
            raise ValueError(f"loops: email column {entry!r} is not dataset.table.column")
        out.append(parts)
    return tuple(out)  # type: ignore[arg-type]


def email_columns_to_read(value: Any) -> tuple[tuple[str, str, str], ...]:
    """The email columns to read: ``value`` parsed, or settings.EMAIL_COLUMNS when unset."""
    return parse_email_columns(value) if value is not None else EMAIL_COLUMNS


def parse_emails(value: Any) -> list[str]:
    """SOURCES__LOOPS__EMAILS: a TOML/JSON list, or one string separated by commas,
    semicolons or whitespace. Invalid entries are dropped with a log line."""
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError:
                value = re.split(r"[\s,;\[\]\"']+", text)
        else:
            value = re.split(r"[\s,;]+", text)
    raw = [v for v in value if isinstance(v, str) and v.strip()]
    emails = [e for e in (normalize_email(v) for v in raw) if e]
    if len(emails) < len(raw):
        log.warning("loops: ignored %d configured value(s) that are not emails", len(raw) - len(emails))
    return emails


def warehouse_emails(warehouse: str | None, columns: Iterable[tuple[str, str, str]]) -> list[str]:
    """Distinct emails held in other raw tables of the warehouse.

    Opened read-only and closed before returning: the runner loads into the same
    file afterwards. A missing file, table or column is not an error: the run goes
    on with the configured emails and says so.
    """
    if not warehouse:
        return []
    if not Path(warehouse).exists():
        log.warning("loops: no warehouse file yet (%s); using the configured emails only", Path(warehouse).name)
        return []
    try:
        con = duckdb.connect(str(warehouse), read_only=True)
    except Exception as exc:  # noqa: BLE001 - no warehouse yet (first run) or locked
        log.warning("loops: cannot read emails from the warehouse (%s); using the configured emails only", type(exc).__name__)
        return []
    found: set[str] = set()
    try:
        for schema, table, column in columns:
            exists = con.execute(
                "select count(*) from information_schema.columns where table_schema = ? and table_name = ? and column_name = ?",
                [schema, table, column],
            ).fetchone()[0]
            if not exists:
                log.warning("loops: %s.%s.%s not in the warehouse yet; using the configured emails only", schema, table, column)
                continue
            rows = con.execute(f'select distinct "{column}" from "{schema}"."{table}" where "{column}" is not null').fetchall()
            found.update(e for r in rows for e in emails_in(r[0]))
    except Exception as exc:  # noqa: BLE001 - never let a foreign table break the load
        log.warning("loops: reading emails from the warehouse failed (%s); using what was read", exc)
    finally:
        con.close()
    return sorted(found)


def destination_emails(sql_client_for: Any, columns: Iterable[tuple[str, str, str]]) -> list[str]:
    """Like ``warehouse_emails``, on any dlt destination (Postgres, MotherDuck, ...):
    ``sql_client_for(dataset)`` opens dlt's SQL client on that dataset."""
    found: set[str] = set()
    for dataset, table, column in columns:
        try:
            with sql_client_for(dataset) as client:
                query = f"select distinct {client.escape_column_name(column)} from {client.make_qualified_table_name(table)}"
                with client.execute_query(query) as cursor:
                    found.update(e for r in cursor.fetchall() for e in emails_in(r[0]))
        except Exception as exc:  # noqa: BLE001 - a missing table (first run) is not an error
            log.warning("loops: cannot read %s.%s.%s from the warehouse (%s); using the configured emails only", dataset, table, column, type(exc).__name__)
    return sorted(found)


def was_found(last: Mapping[str, Any] | None) -> bool:
    """Whether the last lookup found a contact (state written before "found" kept its id)."""
    return bool(last) and bool(last.get("found", last.get("id")))  # type: ignore[union-attr]


def due_emails(
    candidates: Iterable[str],
    lookups: Mapping[str, Mapping[str, Any]],
    now: datetime,
    refresh_days: float,
    retry_not_found_hours: float,
) -> list[str]:
    """The emails a run looks up, from the lookups remembered in source state
    (email -> {"at": ISO time of the last answered lookup, "found": bool}):

    (a) never looked up; (b) not found ([]) and last asked more than
    ``retry_not_found_hours`` ago; (c) found and last refreshed more than
    ``refresh_days`` ago. Found contacts whose email is no longer a candidate are
    refreshed too (their rows are in the table and must stay current); not-found
    emails no longer configured nor seen are forgotten by the schedule.
    """
    due = []
    known = {e for e, last in lookups.items() if was_found(last)}
    for email in sorted(set(candidates) | known):
        last = lookups.get(email)
        if last is None:
            due.append(email)
            continue
        age = now - datetime.fromisoformat(last["at"])
        limit = timedelta(days=refresh_days) if was_found(last) else timedelta(hours=retry_not_found_hours)
        if age >= limit:
            due.append(email)
    return due
