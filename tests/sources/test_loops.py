"""Loops source against the sandbox: contacts found by email (configured list and
Retreaver calls' email tags), lookups remembered, paced under 10 requests/second.

The world is reset to scale 0.01 (40 emails, ~4.5 s per full load at 9 req/s):
every lookup is one paced request, so scale 1 (400 emails, ~46 s) would not fit
the test budget. Scale 1 is measured in docs/sources/loops.md.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from pathlib import Path

import duckdb
import pytest
import requests

from pipelines.ops import source_record
from pipelines.warehouse import make_pipeline
from sandbox.loops.models import LoopsStore
from sandbox.world import World
from tests.conftest import TEST_NOW, TEST_SEED, both_sandbox_modes

SCALE = 0.01
NOBODY = "nobody@nowhere.test"
MALFORMED = "two..dots@example.test"  # passes our loose check; find answers 400


@pytest.fixture
def small(sandbox):
    """The sandbox, reset at SCALE (sandbox_scale below)."""
    return sandbox


@pytest.fixture
def sandbox_scale() -> float:
    """Every test here that uses the sandbox wants the small world: reset it once, at SCALE."""
    return SCALE


def world_emails() -> list[str]:
    return World(seed=TEST_SEED, scale=SCALE, now=TEST_NOW).contact_emails


def expected_contacts(emails, now: datetime = TEST_NOW, mode: str = "default") -> dict[str, dict]:
    """What contacts/find answers for each email at ``now`` (world contacts only)."""
    store = LoopsStore(World(seed=TEST_SEED, scale=SCALE, now=TEST_NOW, doc_shapes=mode == "doc_shapes"))
    found = (store.find(e, now) for e in emails)
    return {c["email"]: store.shape(c) for c in found if c is not None}


def loaded(warehouse) -> dict[str, tuple]:
    rows = warehouse.query("select email, id, subscribed, created_at, first_name, utm_campaign from loops.contacts")
    return {r[0]: r[1:] for r in rows}


def as_row(contact: dict) -> tuple:
    # Doc-shaped contacts carry no id, subscribed or createdAt: their columns are null.
    created = datetime.fromisoformat(contact["createdAt"].replace("Z", "+00:00")) if "createdAt" in contact else None
    return (contact.get("id"), contact.get("subscribed"), created, contact["firstName"], contact.get("utmCampaign"))


def contacts_equal_truth(warehouse, sandbox, mode: str) -> None:
    truth = sandbox.truth("loops")["loops"]["contacts"]
    count, distinct, subscribed = warehouse.query("select count(*), count(distinct email), sum(subscribed::int) from loops.contacts")[0]
    assert count == distinct == truth["count"]
    assert subscribed == (truth["subscribed"] if mode == "default" else None)


def configure(monkeypatch, emails) -> None:
    monkeypatch.setenv("SOURCES__LOOPS__EMAILS", ",".join(emails))


def last_seq(sandbox) -> int:
    log = sandbox.requests("loops")
    return log[-1]["seq"] if log else 0


def write_calls(path: Path, emails) -> None:
    """A hand-made retreaver.calls with the tag_email column the Retreaver source flattens."""
    with duckdb.connect(str(path)) as con:
        con.execute("create schema if not exists retreaver")
        con.execute("create table if not exists retreaver.calls (id bigint, tag_email varchar)")
        start = con.execute("select count(*) from retreaver.calls").fetchone()[0]
        con.executemany("insert into retreaver.calls values (?, ?)", [[start + i, e] for i, e in enumerate(emails)])


@both_sandbox_modes
def test_full_load_equals_truth_paced_without_429(small, warehouse, monkeypatch, caplog, sandbox_mode):
    emails = world_emails()
    configure(monkeypatch, emails + [NOBODY])
    with caplog.at_level(logging.INFO, logger="marketing_etl.loops"):
        result = warehouse.run("loops")
    (source,) = result.sources
    assert source.status == "loaded", source.message
    # One find per email, found or not, and the limiter kept every one under 10/s.
    assert source.requests["requests"] == len(emails) + 1
    assert source.requests["throttled"] == 0
    contacts_equal_truth(warehouse, small, sandbox_mode)
    expected = expected_contacts(emails, mode=sandbox_mode)
    assert loaded(warehouse) == {e: as_row(c) for e, c in expected.items()}
    assert len(expected) < len(emails)  # some are only created after the clock
    types = dict(warehouse.query("select column_name, data_type from information_schema.columns where table_schema = 'loops' and table_name = 'contacts'"))
    assert types["created_at"] == types["looked_up_at"] == "TIMESTAMP WITH TIME ZONE"
    assert warehouse.tables("loops") == {"contacts", "_dlt_loads", "_dlt_pipeline_state", "_dlt_version"}
    # No retreaver.calls (no warehouse file yet): said so, and carried on.
    assert "using the configured emails only" in caplog.text


def test_emails_from_retreaver_calls_and_the_configured_list(small, warehouse, monkeypatch):
    emails = world_emails()
    from_calls = emails[:6]
    # Calls repeat emails, vary their case, and hold junk: junk is never asked for.
    write_calls(warehouse.path, [from_calls[0].upper(), *from_calls, from_calls[1], None, "n/a", ""])
    configured = [emails[5], emails[6], NOBODY]  # emails[5] is in both
    monkeypatch.setenv("SOURCES__LOOPS__EMAILS", json.dumps(configured))  # a TOML/JSON list works too
    result = warehouse.run("loops")
    assert result.sources[0].status == "loaded", result.sources[0].message
    asked = [r["query"]["email"] for r in small.requests("loops")]
    assert len(asked) == len(set(asked))
    assert set(asked) == set(from_calls) | {emails[6], NOBODY}
    assert loaded(warehouse) == {e: as_row(c) for e, c in expected_contacts(emails[:7]).items()}
    # The runner loads into the same file afterwards: our read-only handle is closed.
    with duckdb.connect(str(warehouse.path)) as con:
        con.execute("select 1")


def test_second_run_asks_nothing_and_refresh_policy(small, warehouse, monkeypatch):
    emails = world_emails()
    configure(monkeypatch, emails + [NOBODY])
    warehouse.run("loops")
    count = warehouse.scalar("select count(*) from loops.contacts")
    looked_up = warehouse.scalar("select max(looked_up_at) from loops.contacts")

    seq = last_seq(small)
    result = warehouse.run("loops")
    assert result.sources[0].status == "loaded"
    assert small.requests("loops", since=seq) == []  # found: fresh; not found: asked < 24 h ago
    assert result.sources[0].rows == {}
    assert warehouse.scalar("select count(*) from loops.contacts") == count

    # REFRESH_DAYS=0: every known contact is refreshed, not-found ones still wait.
    monkeypatch.setenv("SOURCES__LOOPS__REFRESH_DAYS", "0")
    seq = last_seq(small)
    warehouse.run("loops")
    assert len(small.requests("loops", since=seq)) == count
    assert warehouse.query("select count(*), count(distinct email) from loops.contacts")[0] == (count, count)
    assert warehouse.scalar("select min(looked_up_at) from loops.contacts") > looked_up


@both_sandbox_modes
def test_contacts_created_or_changed_later_arrive_on_later_runs(small, warehouse, monkeypatch, sandbox_mode):
    emails = world_emails()
    configure(monkeypatch, emails)
    warehouse.run("loops")
    first = loaded(warehouse)
    missing = len(emails) - len(first)
    assert missing > 0

    small.advance(10)  # every world contact is created by then
    env = small.env()
    headers = {"Authorization": f"Bearer {env['SOURCES__LOOPS__API_KEY']}"}
    base = env["SOURCES__LOOPS__BASE_URL"] + "/api/v1/contacts"
    changed = emails[0] if emails[0] in first else next(iter(first))
    assert requests.put(f"{base}/update", json={"email": changed, "firstName": "Renamed"}, headers=headers, timeout=10).ok
    assert requests.post(f"{base}/create", json={"email": "late.signup@example.test"}, headers=headers, timeout=10).ok

    # A new email in the calls table is asked at once; the not-found ones wait a day.
    write_calls(warehouse.path, ["late.signup@example.test"])
    seq = last_seq(small)
    warehouse.run("loops")
    assert [r["query"]["email"] for r in small.requests("loops", since=seq)] == ["late.signup@example.test"]
    assert warehouse.scalar("select count(*) from loops.contacts where email = 'late.signup@example.test'") == 1

    # Once they are due (here: at once), the contacts created since are found.
    monkeypatch.setenv("SOURCES__LOOPS__RETRY_NOT_FOUND_HOURS", "0")
    seq = last_seq(small)
    warehouse.run("loops")
    assert len(small.requests("loops", since=seq)) == missing
    # ...and a refresh brings the change and drops a contact deleted in Loops.
    deleted, replaced = [e for e in first if e != changed][:2]
    for email in (deleted, replaced):
        assert requests.post(f"{base}/delete", json={"email": email}, headers=headers, timeout=10).ok
    new_id = requests.post(f"{base}/create", json={"email": replaced}, headers=headers, timeout=10).json()["id"]
    monkeypatch.setenv("SOURCES__LOOPS__REFRESH_DAYS", "0")
    warehouse.run("loops")
    contacts_equal_truth(warehouse, small, sandbox_mode)
    assert warehouse.scalar("select first_name from loops.contacts where email = ?", [changed]) == "Renamed"
    assert warehouse.scalar("select count(*) from loops.contacts where email = ?", [deleted]) == 0
    # Re-created: the same key (email), the new contact's fields.
    assert warehouse.query("select id, source from loops.contacts where email = ?", [replaced]) == [
        (new_id if sandbox_mode == "default" else None, "API")
    ]
    # Its email is now "not found": with the default policy nothing is asked again.
    monkeypatch.delenv("SOURCES__LOOPS__RETRY_NOT_FOUND_HOURS")
    monkeypatch.delenv("SOURCES__LOOPS__REFRESH_DAYS")
    seq = last_seq(small)
    warehouse.run("loops")
    assert small.requests("loops", since=seq) == []


def test_recovers_from_429_and_5xx(small, warehouse, monkeypatch):
    emails = world_emails()
    configure(monkeypatch, emails[:12])
    small.add_fault("429", api="loops", count=2, retry_after=1)
    small.add_fault("503", api="loops", count=2)
    result = warehouse.run("loops")
    (source,) = result.sources
    assert source.status == "loaded", source.message
    assert source.requests["throttled"] == 2 and source.requests["server_errors"] == 2
    assert source.requests["requests"] == 12 + 4
    assert loaded(warehouse) == {e: as_row(c) for e, c in expected_contacts(emails[:12]).items()}


def lookups_state(warehouse) -> dict:
    return make_pipeline("loops", warehouse.path).state["sources"]["loops"]["lookups"]


def test_an_email_that_errors_is_skipped_counted_and_asked_again(small, warehouse, monkeypatch):
    emails = [e for e in world_emails() if e in expected_contacts(world_emails())][:3]  # three found contacts
    configure(monkeypatch, emails + [MALFORMED])
    (source,) = warehouse.run("loops").sources
    assert source.status == "loaded", source.message
    assert source.requests["skipped_entities"] == 1
    assert source.requests["skipped"][0]["status"] == 400 and "contacts/find" in source.requests["skipped"][0]["endpoint"]
    assert source_record("r1", "run", source).skipped_entities == 1  # the ops.runs row
    assert loaded(warehouse) == {e: as_row(c) for e, c in expected_contacts(emails).items()}
    assert MALFORMED not in lookups_state(warehouse)  # not remembered as "not found"
    seq = last_seq(small)
    warehouse.run("loops")
    assert [r["query"]["email"] for r in small.requests("loops", since=seq)] == [MALFORMED]

    # A refresh whose answers stay errors after retries (here 503) skips each found
    # contact: none is deleted, none is marked "not found", none's schedule moves.
    before = lookups_state(warehouse)
    small.add_fault("503", api="loops", path_contains="contacts/find", rate=1.0, retry_after=None)
    monkeypatch.setenv("SOURCES__LOOPS__REFRESH_DAYS", "0")
    (source,) = warehouse.run("loops").sources
    assert source.status == "loaded", source.message
    assert source.requests["skipped_entities"] == 4
    assert warehouse.scalar("select count(*) from loops.contacts") == 3
    assert lookups_state(warehouse) == before


def test_wrong_credentials_fail_at_once_without_retries(small, warehouse, monkeypatch):
    configure(monkeypatch, world_emails()[:5])
    monkeypatch.setenv("SOURCES__LOOPS__API_KEY", "wrong-loops-key-123456")
    result = warehouse.run("loops")
    (source,) = result.sources
    assert source.status == "failed"
    assert "401" in source.message and "contacts/find" in source.message
    assert "wrong-loops-key-123456" not in source.message
    assert len(small.requests("loops")) == 1


def test_missing_api_key_skips_the_source(small, warehouse, monkeypatch):
    monkeypatch.delenv("SOURCES__LOOPS__API_KEY")
    (source,) = warehouse.run("loops").sources
    assert source.status == "skipped" and "SOURCES__LOOPS__API_KEY" in source.message


def test_key_never_in_warehouse_logs_or_errors(small, warehouse, monkeypatch, caplog):
    key = small.env()["SOURCES__LOOPS__API_KEY"]
    configure(monkeypatch, world_emails()[:4])
    small.add_fault("503", api="loops", count=1)
    with caplog.at_level(logging.DEBUG):
        result = warehouse.run("loops")
    assert result.sources[0].status == "loaded"
    assert key not in caplog.text
    assert all(key not in json.dumps(r) for r in small.requests("loops"))
    with duckdb.connect(str(warehouse.path), read_only=True) as con:
        columns = con.execute(
            "select table_schema, table_name, column_name from information_schema.columns "
            "where table_schema = 'loops' and data_type = 'VARCHAR'"
        ).fetchall()
        for schema, table, column in columns:
            hits = con.execute(f'select count(*) from "{schema}"."{table}" where "{column}" like ?', [f"%{key}%"]).fetchone()[0]
            assert hits == 0, (table, column)


def test_lookup_policy_and_email_parsing():
    from datetime import timedelta

    from sources.loops.helpers import due_emails, emails_in, parse_email_columns, parse_emails

    assert parse_emails(" A@x.test, b@x.test;c@x.test  n/a ") == ["a@x.test", "b@x.test", "c@x.test"]
    # Retreaver's doc shows tag values holding comma-separated lists.
    assert emails_in("A@x.test,b@x.test") == ["a@x.test", "b@x.test"]
    assert parse_email_columns('["retreaver.calls.tag_email"]') == parse_email_columns("retreaver.calls.tag_email") == (("retreaver", "calls", "tag_email"),)
    with pytest.raises(ValueError):
        parse_email_columns("calls.tag_email")
    assert parse_emails('["a@x.test", "B@x.test"]') == parse_emails(["a@x.test", "B@x.test"]) == ["a@x.test", "b@x.test"]
    assert parse_emails(None) == parse_emails("") == []
    now = TEST_NOW
    at = lambda **ago: (now - timedelta(**ago)).isoformat()  # noqa: E731
    lookups = {
        "fresh@x.test": {"at": at(days=6), "found": True},
        "stale@x.test": {"at": at(days=7, seconds=1), "id": "c2"},  # state before "found"
        "gone-from-config@x.test": {"at": at(days=8), "id": "c3"},  # found: kept current
        "missing@x.test": {"at": at(hours=23), "found": False},
        "missing-long@x.test": {"at": at(hours=25), "id": None},
        "forgotten@x.test": {"at": at(days=3), "id": None},  # not found, no longer a candidate
    }
    candidates = ["new@x.test", "fresh@x.test", "stale@x.test", "missing@x.test", "missing-long@x.test"]
    assert due_emails(candidates, lookups, now, 7, 24) == [
        "gone-from-config@x.test", "missing-long@x.test", "new@x.test", "stale@x.test",
    ]  # fmt: skip


def test_lookups_survive_a_lost_dlt_directory(small, warehouse, monkeypatch, tmp_path):
    configure(monkeypatch, world_emails()[:10] + [NOBODY])
    warehouse.run("loops")
    # A new machine: no local pipeline state; dlt restores it from the warehouse.
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt-elsewhere"))
    seq = last_seq(small)
    assert warehouse.run("loops").sources[0].status == "loaded"
    assert small.requests("loops", since=seq) == []
