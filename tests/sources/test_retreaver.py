"""Retreaver source against the sandbox: calls merged on uuid (incremental on
updated_at, newest first), catalogue re-read, reports restated over a lookback."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from sandbox.server import SandboxThread
from sources._shared import http
from tests.conftest import TEST_NOW, TEST_SEED

# Requests of a run with nothing new: 1 calls page (the walk stops at the first row
# older than cursor - lag), 1 page each for campaigns/affiliates/targets/numbers,
# 1 daily report over [last day - 4, tomorrow) and 1 campaign report per day of
# that window with calls (the sandbox's last 5 days all have calls).
NOOP_REQUESTS = 1 + 4 + 1 + 5


@pytest.fixture(scope="module")
def sandbox_server():
    """Only the Retreaver emulator: cheap resets, independent of the other emulators."""
    with SandboxThread(seed=TEST_SEED, scale=1.0, now=TEST_NOW, apis=["retreaver"]) as server:
        yield server


def truth(sandbox: Any) -> dict[str, Any]:
    return sandbox.truth("retreaver")["retreaver"]


def call_totals(warehouse: Any) -> tuple:
    return warehouse.query(
        "select count(*), count(distinct uuid), count(*) filter (where converted), "
        "coalesce(sum(revenue), 0), coalesce(sum(payout), 0), sum(total_cost) from retreaver.calls"
    )[0]


def expected_call_totals(t: dict[str, Any]) -> tuple:
    c = t["calls"]
    return (c["count"], c["count"], c["converted"], Decimal(c["sum_revenue"]), Decimal(c["sum_payout"]), Decimal(c["sum_cost"]))


def report_totals(warehouse: Any, table: str) -> tuple:
    return warehouse.query(
        f"select count(*), sum(total_calls), sum(converted_count), sum(revenue), sum(payout), sum(cost) from retreaver.{table}"
    )[0]


def expected_report_totals(t: dict[str, Any], table: str) -> tuple:
    r = t[table]
    return (r["count"], r["total_calls"], r["converted"], Decimal(r["sum_revenue"]), Decimal(r["sum_payout"]), Decimal(r["sum_cost"]))


def assert_equals_truth(warehouse: Any, sandbox: Any) -> None:
    t = truth(sandbox)
    assert call_totals(warehouse) == expected_call_totals(t)
    assert warehouse.scalar("select max(updated_at) from retreaver.calls").isoformat(timespec="milliseconds").replace("+00:00", "Z") == t["calls"]["max_updated_at"]
    assert warehouse.scalar("select count(*) from retreaver.calls where tag_utm_campaign is not null") == t["calls"]["with_utm_campaign"]
    for table in ("report_daily", "report_campaign_daily"):
        assert report_totals(warehouse, table) == expected_report_totals(t, table), table
    assert warehouse.scalar("select count(*) - count(distinct (day, campaign_id)) from retreaver.report_campaign_daily") == 0
    for table in ("campaigns", "affiliates", "targets", "numbers"):
        n = t[table]["count"]
        assert warehouse.query(f"select count(*), count(distinct id) from retreaver.{table}")[0] == (n, n), table


def loaded(result: Any) -> Any:
    (source,) = result.sources
    assert source.status == "loaded", source.message
    return source


def test_full_load_equals_truth_then_noop_run_is_cheap(sandbox, warehouse):
    source = loaded(warehouse.run("retreaver"))
    assert_equals_truth(warehouse, sandbox)
    calls_pages = -(-truth(sandbox)["calls"]["count"] // 100)
    days = truth(sandbox)["report_daily"]["count"]
    assert source.requests["requests"] == calls_pages + 4 + 1 + days

    types = dict(
        warehouse.query(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'retreaver' and table_name = 'calls'"
        )
    )
    for money in ("revenue", "payout", "charge_total", "total_cost", "profit_gross", "profit_net"):
        assert types[money].startswith("DECIMAL"), money
    for ts in ("created_at", "updated_at", "start_time", "conversions_determined_at"):
        assert types[ts] == "TIMESTAMP WITH TIME ZONE", ts
    assert types["tags"] == "JSON"
    # Tags stay queryable as JSON and the three the transforms need are columns.
    assert warehouse.scalar(
        "select count(*) from retreaver.calls where tags->>'utm_campaign' is distinct from tag_utm_campaign"
    ) == 0
    assert warehouse.scalar("select count(*) from retreaver.calls where tag_email like '%@%'") > 0
    assert warehouse.scalar("select count(*) from retreaver.report_daily where typeof(revenue) like 'DECIMAL%'") > 0
    # Targets come with a -04:00 offset: stored as UTC instants.
    assert warehouse.scalar("select count(*) from retreaver.targets where created_at is null") == 0

    # No credential anywhere in the warehouse.
    key = sandbox.env()["SOURCES__RETREAVER__API_KEY"]
    columns = warehouse.query(
        "select table_name, column_name from information_schema.columns where table_schema = 'retreaver' "
        "and (data_type in ('VARCHAR', 'JSON') or data_type like '%[]')"
    )
    by_table: dict[str, list[str]] = {}
    for table, column in columns:
        by_table.setdefault(table, []).append(f'cast("{column}" as varchar) like ?')
    assert {"calls", "campaigns", "report_daily"} <= set(by_table)
    for table, tests in by_table.items():
        hits = warehouse.scalar(f'select count(*) from retreaver."{table}" where ' + " or ".join(tests), [f"%{key}%"] * len(tests))
        assert hits == 0, table

    # Second run with nothing new: a handful of requests, nothing duplicated.
    seq = sandbox.requests("retreaver")[-1]["seq"]
    loaded(warehouse.run("retreaver"))
    assert len(sandbox.requests("retreaver", since=seq)) == NOOP_REQUESTS
    assert_equals_truth(warehouse, sandbox)


def test_advance_then_run_updates_late_conversions_in_place_despite_faults(sandbox, warehouse):
    loaded(warehouse.run("retreaver"))
    before = truth(sandbox)
    cursor = warehouse.scalar("select max(updated_at) from retreaver.calls")
    sandbox.advance(2)
    after = truth(sandbox)
    assert after["calls"]["converted"] > before["calls"]["converted"]
    # Calls converting after the first load: updated in place, not appended.
    sandbox.add_fault("429", api="retreaver", count=2, retry_after=1)
    sandbox.add_fault("503", api="retreaver", count=2)
    source = loaded(warehouse.run("retreaver"))
    # Exactly the calls updated since the last cursor (new or converted), plus the
    # lag's re-read margin (1 h before it); nothing older.
    newer = "select count(*) from retreaver.calls where updated_at >= ?"
    assert source.rows["calls"] == warehouse.scalar(newer, [cursor - timedelta(hours=1)])
    assert warehouse.scalar(newer, [cursor + timedelta(milliseconds=1)]) >= after["calls"]["count"] - before["calls"]["count"]
    assert source.requests["throttled"] == 2
    assert source.requests["server_errors"] == 2
    assert_equals_truth(warehouse, sandbox)
    # Report days before the advance were restated (late conversions on old days).
    old_days = [d for d, v in after["calls_by_day"].items() if d in before["calls_by_day"] and v != before["calls_by_day"][d]]
    assert old_days
    for day in old_days:
        row = warehouse.query("select total_calls, converted_count, revenue from retreaver.report_daily where day = ?", [day])[0]
        v = after["calls_by_day"][day]
        assert row == (v["count"], v["converted"], Decimal(v["revenue"])), day
    # Only new and changed calls were asked for: about two days' worth of pages.
    calls_requests = [r for r in sandbox.requests("retreaver") if r["path"].endswith("/api/v2/calls.json") and r["status"] == 200]
    full = -(-before["calls"]["count"] // 100)
    # The walk stops on the page holding the first call older than the cursor - lag.
    assert len(calls_requests) - full == -(-(source.rows["calls"] + 1) // 100)


def test_call_updated_mid_walk_is_caught_by_the_next_run(sandbox, warehouse, monkeypatch):
    """Really interleave: advance the sandbox clock while the calls walk is between
    pages. Conversions land and new calls appear on page 1 behind us, later pages
    shift down (a row is seen twice). The next run must reach truth."""
    send = http.MeteredAdapter.send
    fired: list[str] = []

    key_copies: set[int] = set()

    def send_and_advance(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        key_copies.add(request.url.count("api_key="))
        if not fired and "/api/v2/calls.json" in request.url and "page=3" in request.url:
            fired.append(request.url)
            sandbox.advance(1)
        return send(self, request, *args, **kwargs)

    monkeypatch.setattr(http.MeteredAdapter, "send", send_and_advance)
    before = truth(sandbox)
    first = loaded(warehouse.run("retreaver"))
    assert fired
    assert key_copies == {1}  # Link URLs already carry the key: not sent twice
    monkeypatch.setattr(http.MeteredAdapter, "send", send)
    after = truth(sandbox)
    assert after["calls"]["count"] > before["calls"]["count"]
    # The walk started before the advance: what moved to page 1 was not seen yet.
    count, distinct, converted = call_totals(warehouse)[:3]
    assert count == distinct  # merge kept one row per uuid...
    assert first.rows["calls"] > distinct  # ...of rows read twice because pages shifted
    assert count < after["calls"]["count"] and converted < after["calls"]["converted"]

    loaded(warehouse.run("retreaver"))
    assert_equals_truth(warehouse, sandbox)


def test_wrong_credentials_fail_at_once_without_retries(sandbox, warehouse, monkeypatch):
    monkeypatch.setenv("SOURCES__RETREAVER__API_KEY", "wrong-retreaver-key-123456")
    result = warehouse.run("retreaver")
    (source,) = result.sources
    assert source.status == "failed"
    assert "retreaver" in source.message and "401" in source.message and "calls.json" in source.message
    assert "wrong-retreaver-key-123456" not in source.message
    assert len(sandbox.requests("retreaver")) == 1


def test_wrong_company_fails_with_403(sandbox, warehouse, monkeypatch):
    monkeypatch.setenv("SOURCES__RETREAVER__COMPANY_ID", "999")
    (source,) = warehouse.run("retreaver").sources
    assert source.status == "failed"
    assert "403" in source.message
    assert sandbox.env()["SOURCES__RETREAVER__API_KEY"] not in source.message
    assert len(sandbox.requests("retreaver")) == 1


def test_start_date_bounds_the_first_backfill(sandbox, warehouse):
    t = truth(sandbox)
    days = sorted(t["calls_by_day"])
    start = days[-5]
    loaded(warehouse.run("retreaver", retreaver={"start_date": start}))
    assert warehouse.scalar("select min(day) from retreaver.report_daily").isoformat() == start
    assert warehouse.scalar("select count(*) from retreaver.report_daily") == 5
    recent = sum(v["count"] for d, v in t["calls_by_day"].items() if d >= start)
    # Calls updated since START_DATE: every call made since, plus older ones converted since.
    loaded_calls = warehouse.scalar("select count(*) from retreaver.calls")
    assert recent <= loaded_calls < t["calls"]["count"]
    assert warehouse.scalar("select min(updated_at) from retreaver.calls").date().isoformat() >= start
