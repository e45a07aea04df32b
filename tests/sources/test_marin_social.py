"""Marin Social source against the sandbox: dimensions merged on id, daily
statistics merged on (object id, date) with a 3-day restatement window.

A full load at scale 1 takes ~30 s (≈ 800 requests, 48 000 statistics rows), so
the module loads one warehouse once (``loaded``) and each test runs the pipeline
again on top of it; every test holds whatever order it runs in. Only the Marin
emulator is started (module-scoped ``sandbox_server`` override).
"""

from __future__ import annotations

import copy
import gc
import logging
import os
import sys
import time
from collections import defaultdict
from datetime import UTC, date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
import requests

from sandbox.control import SandboxControl
from sandbox.server import SandboxThread
from sources.marin_social.helpers import local_midnight
from tests.conftest import TEST_NOW, TEST_SEED, both_sandbox_modes
from tests.sources.conftest import Warehouse, peak_arrivals_within

API = "marin_social"
CONVERSIONS = ("leadgen.other", "app_custom_event.fb_mobile_purchase", "mobile_app_install")
DIMENSIONS = ("accounts", "advertisers", "media_plans", "campaigns", "ad_sets", "ads")
STATS = {"campaign_stats_daily": "campaign_id", "ad_stats_daily": "ad_id"}


@pytest.fixture(scope="module")
def sandbox_server():
    with SandboxThread(apis=[API], seed=TEST_SEED, scale=1.0, now=TEST_NOW) as server:
        yield server


@pytest.fixture(scope="module")
def sb(sandbox_server) -> SandboxControl:
    """The module's sandbox: NOT reset between tests (the warehouse follows its clock)."""
    control = SandboxControl(sandbox_server.base_url)
    control.reset(seed=TEST_SEED, scale=1.0, now=TEST_NOW.isoformat())
    return control


@pytest.fixture(scope="module")
def env(sb, tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        for name, value in sb.env().items():
            mp.setenv(name, value)
        mp.setenv("DLT_DATA_DIR", str(tmp_path_factory.mktemp("dlt")))
        mp.setenv("RUNTIME__REQUEST_BACKOFF_FACTOR", "0.05")
        mp.setenv("RUNTIME__REQUEST_MAX_RETRY_DELAY", "2")
        yield sb.env()


@pytest.fixture(scope="module")
def loaded(env, sb, tmp_path_factory) -> dict[str, Any]:
    """One full load into a module warehouse; what it did is kept for the tests."""
    sb.clear_faults()
    wh = Warehouse(tmp_path_factory.mktemp("wh") / "warehouse.duckdb")
    seq = sb.requests(API)[-1]["seq"] if sb.requests(API) else 0
    result = wh.run(API)
    return {"warehouse": wh, "result": result.sources[0], "requests": sb.requests(API, since=seq)}


@pytest.fixture
def faults_cleared(sb):
    sb.clear_faults()
    yield
    sb.clear_faults()


# ------------------------------------------------------------------- helpers
_TRUTH: dict[str, Any] = {}


def truth_of(sb: SandboxControl) -> dict[str, Any]:
    """The sandbox's truth at its current clock (computing it takes seconds: cached)."""
    now = str(sb.clock())
    if now not in _TRUTH:
        _TRUTH[now] = sb.truth(API)[API]
    return _TRUTH[now]


def stats_totals(wh: Warehouse, table: str) -> dict[str, Any]:
    """The warehouse's figures in the shape of the sandbox's truth block."""
    count, impressions, clicks, conversions = wh.query(
        f"select count(*), sum(impression), sum(click), sum(conversions) from {API}.{table}"
    )[0]
    spent = dict(wh.query(f"select currency, sum(spent) from {API}.{table} group by 1"))
    value = dict(wh.query(f"select currency, sum(conversions_value) from {API}.{table} group by 1"))
    by_name = dict(
        wh.query(
            f"select m.name, sum(cast(m.number as bigint)) from {API}.{table}, "
            "unnest(from_json(main_metrics, '[{\"name\": \"VARCHAR\", \"number\": \"BIGINT\"}]')) as t(m) "
            "group by 1"
        )
    )
    return {
        "count": count,
        "sum_impressions": int(impressions),
        "sum_clicks": int(clicks),
        "sum_spent_by_currency": {c: str(v.normalize()) for c, v in sorted(spent.items())},
        "sum_conversions": int(conversions),
        "sum_conversions_by_name": {n: int(by_name.get(n, 0)) for n in CONVERSIONS},
        "sum_conversions_value_by_currency": {c: str(v.normalize()) for c, v in sorted(value.items())},
    }


def expected_totals(block: dict[str, Any]) -> dict[str, Any]:
    norm = lambda d: {c: str(Decimal(v).normalize()) for c, v in sorted(d.items())}  # noqa: E731
    return {
        **block,
        "sum_spent_by_currency": norm(block["sum_spent_by_currency"]),
        "sum_conversions_by_name": {n: block["sum_conversions_by_name"][n] for n in CONVERSIONS},
        "sum_conversions_value_by_currency": norm(block["sum_conversions_value_by_currency"]),
    }


def assert_equals_truth(wh: Warehouse, sb: SandboxControl, truth: dict[str, Any] | None = None) -> None:
    truth = truth or truth_of(sb)
    for table in DIMENSIONS:
        assert wh.scalar(f"select count(*) from {API}.{table}") == truth[table]["count"], table
        assert wh.scalar(f"select count(*) - count(distinct id) from {API}.{table}") == 0, table
    for table, id_column in STATS.items():
        assert stats_totals(wh, table) == expected_totals(truth[table]), table
        dupes = wh.scalar(f"select count(*) - count(distinct ({id_column}, date)) from {API}.{table}")
        assert dupes == 0, table


def row_counts(wh: Warehouse) -> dict[str, int]:
    return {t: wh.scalar(f"select count(*) from {API}.{t}") for t in (*DIMENSIONS, *STATS)}


def expected_dimension_requests(truth: dict[str, Any], ads_walked: bool = True) -> int:
    # accounts, advertisers, clients: one page each (limit=300); campaigns per media
    # plan; when ad sets and ads are walked, ad sets per campaign and ads per ad set:
    # one page each at scale 1; plus the accounts lookup the statistics resources
    # make (timezone, currency).
    walk = truth["campaigns"]["count"] + truth["ad_sets"]["count"] if ads_walked else 0
    return 3 + truth["media_plans"]["count"] + walk + 1


def stats_windows(reqs: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    windows: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in reqs:
        if r["path"].endswith("/statistics"):
            windows[(r["path"].split("/")[2], r["query"]["level"])].append(r["query"])
    return windows


# --------------------------------------------------------------------- tests
def test_full_load_equals_truth_with_decimal_money(loaded, sb):
    source, wh = loaded["result"], loaded["warehouse"]
    assert source.status == "loaded", source.message
    assert_equals_truth(wh, sb)
    truth = truth_of(sb)
    windows = stats_windows(loaded["requests"])
    # One statistics window per media plan per level, walked page by page.
    assert set(windows) == {(str(p), lvl) for p in truth["media_plans"]["by_id"] for lvl in ("campaign", "ad")}
    for queries in windows.values():
        assert {(q["aggregate"], q["start_date"], q["end_date"], q["limit"]) for q in queries} == {
            ("day", queries[0]["start_date"], queries[0]["end_date"], "300")
        }
        assert [int(q.get("page", 1)) for q in queries] == list(range(1, len(queries) + 1))
    n_stats = sum(len(q) for q in windows.values())
    assert len(loaded["requests"]) == expected_dimension_requests(truth) + n_stats

    types = dict(
        wh.query(
            "select table_name || '.' || column_name, data_type from information_schema.columns where table_schema = ?",
            [API],
        )
    )
    for column in ("spent", "income", "cpc", "conversions_value"):
        assert types[f"campaign_stats_daily.{column}"].startswith("DECIMAL"), column
        assert types[f"ad_stats_daily.{column}"].startswith("DECIMAL"), column
    assert types["campaign_stats_daily.date"] == "DATE"
    assert types["campaigns.start_date"] == "TIMESTAMP WITH TIME ZONE"
    assert types["ad_sets.bid"].startswith("DECIMAL")
    assert isinstance(wh.scalar(f"select max(spent) from {API}.ad_stats_daily"), Decimal)
    # Parent links and the account's currency/timezone on every statistics row.
    assert wh.scalar(f"select count(*) from {API}.ads where adset_id is null or campaign_id is null or media_plan_id is null") == 0
    assert wh.scalar(f"select count(*) from {API}.ad_sets where campaign_id is null or media_plan_id is null") == 0
    assert wh.scalar(f"select count(*) from {API}.campaigns where media_plan_id is distinct from client_id") == 0
    assert wh.scalar(
        f"select count(*) from {API}.ad_stats_daily s join {API}.accounts a on a.id = s.account_id "
        "where s.currency = a.currency and s.timezone = a.timezone"
    ) == truth["ad_stats_daily"]["count"]
    # Every ad/day row's ad is in the ads table (adset link resolvable).
    assert wh.scalar(f"select count(*) from {API}.ad_stats_daily s anti join {API}.ads a on a.id = s.ad_id") == 0


def test_first_load_walks_every_campaigns_ad_sets_and_ads(loaded, sb):
    truth = truth_of(sb)
    assert len(loaded["requests"]) >= expected_dimension_requests(truth)
    walked = {r["path"] for r in loaded["requests"] if r["path"].endswith(("/adsets", "/ads"))}
    assert len(walked) == truth["campaigns"]["count"] + truth["ad_sets"]["count"]


def test_second_run_rereads_dimensions_and_one_window_per_plan_and_level(loaded, sb, faults_cleared):
    wh = loaded["warehouse"]
    before = row_counts(wh)
    # Each media plan's window starts RESTATEMENT_DAYS before its own last loaded day.
    window_start = {
        plan: newest - timedelta(days=3)
        for plan, newest in wh.query(
            f"select c.media_plan_id, max(s.date) from {API}.campaign_stats_daily s "
            f"join {API}.campaigns c on c.id = s.campaign_id group by 1"
        )
    }
    timezones = dict(wh.query(f"select id, timezone from {API}.accounts"))
    plan_account = dict(wh.query(f"select id, account_id from {API}.media_plans"))
    seq = sb.requests(API)[-1]["seq"]

    result = wh.run(API).sources[0]
    assert result.status == "loaded", result.message
    reqs = sb.requests(API, since=seq)
    truth = truth_of(sb)
    windows = stats_windows(reqs)
    assert set(windows) == {(str(p), lvl) for p in truth["media_plans"]["by_id"] for lvl in ("campaign", "ad")}
    in_window: dict[tuple[str, str], int] = defaultdict(int)
    for level, table in (("campaign", "campaign_stats_daily"), ("ad", "ad_stats_daily")):
        for plan, day, rows in wh.query(
            f"select c.media_plan_id, s.date, count(*) from {API}.{table} s "
            f"join {API}.campaigns c on c.id = s.campaign_id group by 1, 2"
        ):
            if day >= window_start[plan]:
                in_window[(plan, level)] += rows
    pages = 0
    for (plan, level), queries in windows.items():
        tz = timezones[plan_account[plan]]
        # [last loaded day - RESTATEMENT_DAYS, ...) as the account-local midnight
        # (the Twitter plan has no figures: it keeps asking from START_DATE).
        if plan in window_start:
            assert {q["start_date"] for q in queries} == {str(local_midnight(window_start[plan], tz))}
        # Exactly the pages the window's rows need (300 per page, at least one).
        assert len(queries) == max(1, -(-in_window.get((plan, level), 0) // 300)), (plan, level)
        pages += len(queries)
    assert pages <= 3 * truth["media_plans"]["count"]  # 12 campaign pages + at most 2 per plan for ads
    # Within AD_DIMENSIONS_REFRESH_HOURS of the first load: no ad set or ad is asked
    # again (every campaign was walked), every other dimension is.
    assert not [r for r in reqs if r["path"].endswith(("/adsets", "/ads"))]
    assert len(reqs) == expected_dimension_requests(truth, ads_walked=False) + pages
    assert row_counts(wh) == before
    assert_equals_truth(wh, sb)


def snapshot(wh: Warehouse) -> dict[tuple[str, date], tuple[Any, ...]]:
    """campaign_stats_daily by (campaign_id, date): media plan, figures, load id."""
    return {
        (r[0], r[1]): r[2:]
        for r in wh.query(
            f"select s.campaign_id, s.date, c.media_plan_id, s.impression, s.spent, s.conversions, s._dlt_load_id "
            f"from {API}.campaign_stats_daily s join {API}.campaigns c on c.id = s.campaign_id"
        )
    }


def test_advance_adds_new_days_and_restates_the_last_three(loaded, sb, faults_cleared):
    wh = loaded["warehouse"]
    before = snapshot(wh)
    newest: dict[str, date] = {}
    for (_, day), (plan, *_rest) in before.items():
        newest[plan] = max(newest.get(plan, day), day)
    window_start = {plan: day - timedelta(days=3) for plan, day in newest.items()}

    sb.advance(2)
    result = wh.run(API).sources[0]
    assert result.status == "loaded", result.message
    assert_equals_truth(wh, sb)
    after = snapshot(wh)

    for plan, day in newest.items():  # two new days for every media plan
        assert max(d for (_, d), v in after.items() if v[0] == plan) == day + timedelta(days=2), plan
    old = {k: v for k, v in before.items() if k[1] < window_start[v[0]]}
    assert old and all(after[k] == v for k, v in old.items())  # older days untouched (same load)
    young = [k for k, v in before.items() if k[1] >= newest[v[0]] - timedelta(days=1)]
    assert young and all(after[k][1:4] != before[k][1:4] for k in young)  # restated in place (ages 0 and 1)

    # Row by row, each plan's re-read window equals what the API now serves.
    api = sb.env()["SOURCES__MARIN_SOCIAL__BASE_URL"]
    key = sb.env()["SOURCES__MARIN_SOCIAL__API_KEY"]
    tzs = dict(wh.query(f"select p.id, a.timezone from {API}.media_plans p join {API}.accounts a on a.id = p.account_id"))
    served = {}
    for plan, tz in tzs.items():
        if plan not in window_start:  # the Twitter plan: no figures
            continue
        params = {"key": key, "aggregate": "day", "level": "campaign", "limit": 300, "start_date": local_midnight(window_start[plan], tz)}
        body = requests.get(f"{api}/clients/{plan}/statistics", params=params, timeout=60).json()
        assert body["range"]["next"] is None
        for row in body["data"]:
            served[(row["campaign_id"], date.fromisoformat(row["date"]))] = (row["impression"], Decimal(str(row["spent"])))
    stored = {k: tuple(v[1:3]) for k, v in after.items() if k[1] >= window_start[v[0]]}
    assert stored == served


def test_wrong_key_fails_at_once_without_retries(env, sb, tmp_path, monkeypatch, faults_cleared):
    monkeypatch.setenv("SOURCES__MARIN_SOCIAL__API_KEY", "wrong-marin-key-987654")
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt"))
    seq = sb.requests(API)[-1]["seq"] if sb.requests(API) else 0
    result = Warehouse(tmp_path / "w.duckdb").run(API).sources[0]
    assert result.status == "failed"
    # One clear line: source, endpoint, status, what to check.
    assert "marin_social: GET /marin_social/accounts answered 403 Access denied" in result.message, result.message
    assert "SOURCES__MARIN_SOCIAL__API_KEY" in result.message
    assert "wrong-marin-key-987654" not in result.message
    reqs = sb.requests(API, since=seq)
    assert len(reqs) == 1 and reqs[0]["status"] == 403


def test_recovers_from_429_and_5xx_and_never_leaks_the_key(loaded, env, sb, caplog, faults_cleared):
    key = env["SOURCES__MARIN_SOCIAL__API_KEY"]
    wh = loaded["warehouse"]
    sb.add_fault("429", api=API, count=2, retry_after=1)
    sb.add_fault("503", api=API, count=2)
    with caplog.at_level(logging.DEBUG):
        result = wh.run(API).sources[0]
    assert result.status == "loaded", result.message
    assert result.requests["throttled"] == 2
    assert result.requests["server_errors"] == 2
    assert_equals_truth(wh, sb)

    # The key is in no log line (dlt logs request URLs and retries at DEBUG) ...
    assert key not in caplog.text
    # ... no warehouse value ...
    for table, column in wh.query(
        "select table_name, column_name from information_schema.columns "
        "where table_schema = ? and data_type in ('VARCHAR', 'JSON')",
        [API],
    ):
        assert wh.scalar(f'select count(*) from {API}."{table}" where cast("{column}" as varchar) like ?', [f"%{key}%"]) == 0
    # ... nor dlt's pipeline state, schemas and traces on disk.
    for path in Path(os.environ["DLT_DATA_DIR"]).rglob("*"):
        if path.is_file() and path.suffix != ".parquet":  # row data: checked in the warehouse above
            assert key.encode() not in path.read_bytes(), path
    # It was sent as the documented `key` query parameter (the sandbox log masks it).
    assert all(r["query"].get("key") == "***" for r in sb.requests(API)[-5:])


def marin_state(wh: Warehouse) -> tuple[dict[str, Any], tuple]:
    """The source state the runner's pipeline keeps (last_date_by_media_plan per
    statistics resource), and the state rows stored in the warehouse."""
    from pipelines.warehouse import make_pipeline

    state = make_pipeline(API, wh.path).state
    stored = (
        wh.query(f"select count(*), max(version) from {API}._dlt_pipeline_state")[0]
        if "_dlt_pipeline_state" in wh.tables(API)
        else None
    )
    return copy.deepcopy(dict(state.get("sources", {}).get(API, {}))), stored


def stats_rows(wh: Warehouse) -> dict[str, dict[tuple[str, date], tuple[Any, ...]]]:
    """Both statistics tables by (object id, date): figures, then the load id."""
    return {
        table: {
            (r[0], r[1]): r[2:]
            for r in wh.query(
                f"select {id_column}, date, impression, click, spent, conversions, conversions_value, timezone, _dlt_load_id "
                f"from {API}.{table}"
            )
        }
        for table, id_column in STATS.items()
    }


def test_backfill_window_reloads_stats_days_without_dimensions_or_state(loaded, sb, faults_cleared):
    """Window mode on the full-load warehouse: the window's statistics rows, deleted
    first, come back exactly as the normal run loaded them; nothing else moves."""
    wh = loaded["warehouse"]
    newest = wh.scalar(f"select max(date) from {API}.campaign_stats_daily")
    start, end = newest - timedelta(days=20), newest - timedelta(days=17)  # days older than any restatement
    state_before = marin_state(wh)
    assert state_before[0]["resources"]["campaign_stats_daily"]["last_date_by_media_plan"]
    dims_before = row_counts(wh)
    before = stats_rows(wh)
    in_window = {t: {k: v for k, v in rows.items() if start <= k[1] < end} for t, rows in before.items()}
    assert all(in_window.values()) and all(len(in_window[t]) < len(before[t]) for t in STATS)
    with duckdb.connect(str(wh.path)) as con:  # the window's days go missing
        for table in STATS:
            con.execute(f"delete from {API}.{table} where date >= ? and date < ?", [start, end])
    timezones = dict(wh.query(f"select p.id, a.timezone from {API}.media_plans p join {API}.accounts a on a.id = p.account_id"))

    seq = sb.requests(API)[-1]["seq"]
    window = {"start_date": start.isoformat(), "end_date": end.isoformat()}
    result = wh.run(API, marin_social=window).sources[0]
    assert result.status == "loaded", result.message
    # Only the statistics are loaded (the dimension tables get no rows) ...
    assert result.rows == {t: len(in_window[t]) for t in STATS}
    after = stats_rows(wh)
    for table in STATS:
        # ... the window's rows are back exactly as the normal run had them, and the
        # end day (exclusive) and every other day were not rewritten (same load id).
        assert {k: v[:-1] for k, v in after[table].items() if start <= k[1] < end} == {
            k: v[:-1] for k, v in in_window[table].items()
        }, table
        assert {k: v for k, v in after[table].items() if not start <= k[1] < end} == {
            k: v for k, v in before[table].items() if not start <= k[1] < end
        }, table
    assert row_counts(wh) == dims_before
    assert_equals_truth(wh, sb)  # no duplicates, equal to the sandbox's truth

    # Requests: the parent /clients, the accounts lookup (timezones), then one window
    # per media plan and level as account-local midnights [start, end); no dimension walk.
    reqs = sb.requests(API, since=seq)
    others = sorted(r["path"] for r in reqs if not r["path"].endswith("/statistics"))
    assert others == ["/accounts", "/clients"]
    windows = stats_windows(reqs)
    assert set(windows) == {(p, lvl) for p in timezones for lvl in ("campaign", "ad")}
    for (plan, _level), queries in windows.items():
        tz = timezones[plan]
        assert {(q["aggregate"], q["start_date"], q["end_date"]) for q in queries} == {
            ("day", str(local_midnight(start, tz)), str(local_midnight(end, tz)))
        }
    # State exactly as the normal runs left it.
    assert marin_state(wh) == state_before

    # The same backfill again: same rows, same figures, state still untouched.
    assert wh.run(API, marin_social=window).sources[0].status == "loaded"
    again = stats_rows(wh)
    assert {t: {k: v[:-1] for k, v in rows.items()} for t, rows in again.items()} == {
        t: {k: v[:-1] for k, v in rows.items()} for t, rows in after.items()
    }
    assert marin_state(wh) == state_before
    for table, id_column in STATS.items():
        assert wh.scalar(f"select count(*) - count(distinct ({id_column}, date)) from {API}.{table}") == 0, table
        assert len(again[table]) == len(before[table]), table


def test_backfill_on_a_fresh_pipeline_writes_no_state(env, sb, tmp_path, monkeypatch, faults_cleared):
    """Backfill before any normal run: rows load, but no state appears (not even an
    empty last_date_by_media_plan), so the first normal run still starts at START_DATE."""
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt"))
    wh = Warehouse(tmp_path / "w.duckdb")
    newest = date.fromisoformat(sb.clock()["now"][:10])
    start, end = newest - timedelta(days=12), newest - timedelta(days=11)
    result = wh.run(API, marin_social={"start_date": start.isoformat(), "end_date": end.isoformat()}).sources[0]
    assert result.status == "loaded", result.message
    assert set(result.rows) == set(STATS) and all(result.rows.values())
    assert wh.query(f"select distinct date from {API}.campaign_stats_daily") == [(start,)]
    state, _stored = marin_state(wh)
    # (dlt itself stores a first pipeline-state row on a fresh pipeline: without source state.)
    assert state == {}, state


def test_backfill_end_date_without_start_date_is_refused(env, sb, tmp_path, monkeypatch):
    from sources.marin_social import marin_social_source
    from sources.marin_social.helpers import window_bounds

    # End exclusive: the local midnight OF the end day (Berlin DST day 2026-03-29 starts at 23:00Z the day before).
    assert window_bounds((date(2026, 3, 29), date(2026, 3, 30)), "Europe/Berlin") == (
        1774738800,
        local_midnight(date(2026, 3, 30), "Europe/Berlin"),
    )
    assert local_midnight(date(2026, 3, 30), "Europe/Berlin") - 1774738800 == 23 * 3600

    with pytest.raises(ValueError, match="marin_social: end_date .*needs start_date"):
        marin_social_source(end_date="2026-01-08")
    with pytest.raises(ValueError, match="marin_social: end_date .* must be after start_date"):
        marin_social_source(start_date="2026-01-09", end_date="2026-01-08")
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt"))
    seq = sb.requests(API)[-1]["seq"] if sb.requests(API) else 0
    result = Warehouse(tmp_path / "w.duckdb").run(API, marin_social={"end_date": "2026-01-08"}).sources[0]
    assert result.status == "failed"
    assert "marin_social" in result.message and "end_date" in result.message and "start_date" in result.message
    assert sb.requests(API, since=seq) == []


# ------------------------------------------------------------- helper units
def test_windows_are_account_local_midnights_and_restate_three_days():
    from sources.marin_social.helpers import conversion_names, restated_from, shape_stats_row, stats_window

    # Berlin midnight of 2026-03-29 (the DST day) is 2026-03-28T23:00Z; the window
    # ends at the midnight after the account's local today.
    start, end = stats_window("2026-03-29", "Europe/Berlin", today=date(2026, 3, 30))
    assert start == 1774738800 and end == local_midnight(date(2026, 3, 31), "Europe/Berlin")
    assert local_midnight(date(2026, 1, 1), "America/Los_Angeles") == 1767254400
    assert restated_from(None, 3, "2026-01-01") == "2026-01-01"  # a plan's first run: from START_DATE
    assert restated_from("2026-03-10", 3, "2026-01-01") == "2026-03-07"
    assert restated_from("2026-01-02", 3, "2026-01-01") == "2026-01-01"  # never before START_DATE
    assert conversion_names('["a", "b"]') == conversion_names("a, b") == conversion_names(["a", "b"]) == {"a", "b"}
    row = shape_stats_row(
        {
            "spent": 0.1,
            "income": 12.34,
            "main_metrics": [
                {"name": "leadgen.other", "number": 2, "amount": 0.1},
                {"name": "mobile_app_install", "number": 3, "amount": 0.2},
                {"name": "like", "number": 9, "amount": 5},
            ],
        },
        {"id": "act_1", "currency": "EUR", "timezone": "Europe/Berlin"},
        frozenset(CONVERSIONS),
        ("spent", "income", "conversions_value"),
    )
    assert (row["conversions"], row["conversions_value"]) == (5, Decimal("0.3"))  # exact, not 0.30000000000000004
    assert (row["spent"], row["income"]) == (Decimal("0.1"), Decimal("12.34"))
    assert (row["account_id"], row["currency"], row["timezone"]) == ("act_1", "EUR", "Europe/Berlin")


# ------------------------------------------- doc shapes, loud errors (small world)
# A scale-0.01 world (15 campaigns, 13 media plans) read with limit=50: several
# pages per statistics window in seconds.
SMALL_SCALE = 0.01


@pytest.fixture(scope="module")
def small_server():
    with SandboxThread(apis=[API], seed=TEST_SEED, scale=SMALL_SCALE, now=TEST_NOW) as server:
        yield server


@pytest.fixture
def small(small_server, sandbox_mode, monkeypatch, tmp_path) -> tuple[SandboxControl, Warehouse]:
    """The small sandbox, reset in ``sandbox_mode``, and an empty warehouse on it."""
    control = SandboxControl(small_server.base_url)
    control.reset(seed=TEST_SEED, scale=SMALL_SCALE, now=TEST_NOW.isoformat(), doc_shapes=sandbox_mode == "doc_shapes")
    for name, value in control.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt"))
    monkeypatch.setenv("RUNTIME__REQUEST_BACKOFF_FACTOR", "0.01")
    monkeypatch.setenv("RUNTIME__REQUEST_MAX_RETRY_DELAY", "0.1")
    monkeypatch.setenv("RUNTIME__REQUEST_MAX_ATTEMPTS", "3")
    yield control, Warehouse(tmp_path / "small.duckdb")
    control.clear_faults()


PAGES_OF_50 = {"marin_social": {"page_size": 50}}


@both_sandbox_modes
def test_pages_asked_by_number_load_every_row_with_doc_shaped_next_links(small, sandbox_mode):
    sb, wh = small
    result = wh.run(API, **PAGES_OF_50).sources[0]
    assert result.status == "loaded", result.message
    truth = sb.truth(API)[API]
    assert_equals_truth(wh, sb, truth)
    reqs = sb.requests(API)
    stats_pages = [int(r["query"]["page"]) for r in reqs if r["path"].endswith("/statistics")]
    assert max(stats_pages) >= 3  # several pages per window, each with its own filters
    assert all({"level", "aggregate", "start_date", "end_date"} <= set(r["query"]) for r in reqs if r["path"].endswith("/statistics"))
    assert all(r["query"]["limit"] == "50" for r in reqs)
    # The doc's Twitter account (no currency) and campaigns (lifetime_budget, no ad sets).
    assert wh.query(f"select currency, timezone from {API}.accounts where src = 'tw'") == [(None, "America/Chicago")]
    assert wh.query(f"select lifetime_budget from {API}.campaigns where src = 'tw' order by id") == [(Decimal(200),), (Decimal(750),)]
    tw_campaigns = [r[0] for r in wh.query(f"select id from {API}.campaigns where src = 'tw'")]
    asked = {r["path"] for r in reqs}
    assert not any(f"/campaigns/{c}/adsets" in p for c in tw_campaigns for p in asked)
    assert all(any(p.endswith(f"/campaigns/{c}/ads") for p in asked) for c in tw_campaigns)


def test_rows_read_not_equal_to_range_total_fails_naming_the_list(small, monkeypatch):
    from sandbox.marin_social import routes

    sb, wh = small
    page = routes._page  # the range of every list page, rows rendered as dicts or as JSON text

    def one_row_short(request, items):  # a list that says it has one row more
        chunk, page_range = page(request, items)
        if request.path.endswith("/statistics") and request.arg("level") == "ad":
            page_range["total"] += 1
        return chunk, page_range

    monkeypatch.setattr(routes, "_page", one_row_short)
    result = wh.run(API, **PAGES_OF_50).sources[0]
    assert result.status == "failed"
    assert "marin_social: GET /marin_social/clients/" in result.message and "/statistics (level=ad): read " in result.message
    assert "range.total is" in result.message, result.message


def test_persistent_429_on_one_plans_statistics_fails_the_source(small):
    sb, wh = small
    sb.add_fault("429", api=API, path_contains="/clients/903/statistics", rate=1.0, retry_after=None)
    result = wh.run(API).sources[0]
    assert result.status == "failed"
    assert "/clients/903/statistics answered 429" in result.message, result.message


def test_a_failure_while_other_plans_pages_are_in_flight_is_the_error_named(small, monkeypatch):
    """When one plan's walk fails, dlt closes the walks side by side with it. One
    still waiting for its page in a worker thread is left to finish, not closed
    under it (dlt's own wrapper raised "generator already executing" there, and
    again as "Exception ignored" on stderr): the 429 is the only error."""
    sb, wh = small
    unraisable: list[Any] = []  # what Python would print as "Exception ignored in ..."
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    sb.add_fault("429", api=API, path_contains="/clients/903/statistics", rate=1.0, retry_after=None)
    # The other plans' pages answer after 4 s: longer than dlt waits for its pool (2 s).
    sb.add_fault("slow", api=API, path_contains="/statistics", rate=1.0, delay=4.0, count=6)
    result = wh.run(API).sources[0]
    in_flight = [f for f in sb.faults() if f["kind"] == "slow"][0]["hits"]
    assert in_flight >= 1  # a page was in flight when the walk of plan 903 failed
    assert result.status == "failed"
    assert "/clients/903/statistics answered 429" in result.message, result.message
    assert "generator" not in result.message
    # The pages still in flight are answered here, not into the next test's sandbox.
    deadline = time.monotonic() + 10
    while sum(r["fault"] == "slow" for r in sb.requests(API)) < in_flight and time.monotonic() < deadline:
        time.sleep(0.1)
    gc.collect()
    assert [f"{type(u.exc_value).__name__}: {u.exc_value}" for u in unraisable] == []


def test_404_on_one_campaigns_ad_sets_fails_loudly(small):
    sb, wh = small
    sb.add_fault("404", api=API, path_contains="/adsets", count=1)
    result = wh.run(API).sources[0]
    assert result.status == "failed"
    assert "marin_social: GET /marin_social/clients/" in result.message and "/adsets answered 404" in result.message, result.message


def test_plan_whose_account_is_missing_is_recorded_and_the_others_load(small, monkeypatch):
    from sandbox.marin_social import routes

    sb, wh = small
    paginate = routes.paginate
    gone = "act_1002"

    def without_account(request, items, render):
        if request.path == "/accounts":
            items = [a for a in items if a.id != gone]
        return paginate(request, items, render)

    monkeypatch.setattr(routes, "paginate", without_account)
    result = wh.run(API).sources[0]
    assert result.status == "loaded", result.message
    plans = [r[0] for r in wh.query(f"select id from {API}.media_plans where account_id = ?", [gone])]
    assert plans
    # Each of its plans, at each level, is counted as skipped (ops.runs), with the reason.
    assert result.requests["skipped_entities"] == 2 * len(plans)
    assert all(f"account {gone} of media plan" in s["detail"] for s in result.requests["skipped"])
    assert wh.scalar(f"select count(*) from {API}.campaign_stats_daily where account_id = ?", [gone]) == 0
    assert wh.scalar(f"select count(distinct client_id) from {API}.campaign_stats_daily") > 0


def test_ad_walk_every_run_when_refresh_hours_is_zero(loaded, sb, monkeypatch, faults_cleared):
    monkeypatch.setenv("SOURCES__MARIN_SOCIAL__AD_DIMENSIONS_REFRESH_HOURS", "0")
    seq = sb.requests(API)[-1]["seq"]
    result = loaded["warehouse"].run(API).sources[0]
    assert result.status == "loaded", result.message
    truth = truth_of(sb)
    walked = {r["path"] for r in sb.requests(API, since=seq) if r["path"].endswith(("/adsets", "/ads"))}
    assert len(walked) == truth["campaigns"]["count"] + truth["ad_sets"]["count"]
    assert_equals_truth(loaded["warehouse"], sb)


def test_ad_walk_schedule_walks_all_when_due_and_only_new_campaigns_between(monkeypatch):
    from datetime import datetime

    from sources.marin_social.helpers import AdWalkSchedule

    state: dict[str, Any] = {}
    monkeypatch.setattr("dlt.current.source_state", lambda: state)
    clock = [datetime(2026, 1, 1, 0, 0, tzinfo=UTC)]

    def run(ids: list[str], hours: float = 24) -> list[str]:
        schedule = AdWalkSchedule(hours, now=lambda: clock[0])
        return [i for i in ids if schedule.wants(i)]

    assert run(["1", "2"]) == ["1", "2"]  # never walked: all
    clock[0] = clock[0].replace(hour=23)
    assert run(["1", "2", "3"]) == ["3"]  # within the day: the new campaign only
    assert run(["1", "2", "3"]) == []
    clock[0] = clock[0].replace(day=2)  # 24 h after the whole walk: all again
    assert run(["1", "2", "3"]) == ["1", "2", "3"]
    assert run(["1", "2", "3"], hours=0) == ["1", "2", "3"]  # 0: every run
    with pytest.raises(ValueError, match="ad_dimensions_refresh_hours"):
        AdWalkSchedule(-1)


def _contents(wh: Warehouse) -> dict[str, list[str]]:
    """Every table as sorted rows, dlt's own columns left out (load ids differ)."""
    out = {}
    for table in (*DIMENSIONS, *STATS):
        columns = [c for (c,) in wh.query(
            "select column_name from information_schema.columns where table_schema = ? and table_name = ? order by 1", [API, table]
        ) if not c.startswith("_dlt")]
        out[table] = sorted(map(repr, wh.query(f"select {', '.join(columns)} from {API}.{table}")))
    return out


def test_independent_lists_are_read_side_by_side_and_load_the_same_rows_as_one_at_a_time(small, monkeypatch, tmp_path):
    """Plans' campaigns and statistics, campaigns' ad sets and ads, ad sets' ads are
    fetched with several requests open at once (never more than the setting), each
    list's pages still in order, and the tables are identical to a load that reads
    one page at a time."""
    from sources.marin_social.settings import MAX_CONCURRENT_REQUESTS

    sb, wh = small
    delay = 0.2
    sb.add_fault("slow", api=API, delay=delay, rate=1.0)
    side_by_side = wh.run(API, **PAGES_OF_50).sources[0]
    assert side_by_side.status == "loaded", side_by_side.message
    log = sb.requests(API)
    assert 1 < side_by_side.requests["max_in_flight"] <= MAX_CONCURRENT_REQUESTS
    assert 1 < peak_arrivals_within(log, delay) <= MAX_CONCURRENT_REQUESTS
    for queries in stats_windows(log).values():  # one window's pages: in order, one at a time
        assert [int(q["page"]) for q in queries] == list(range(1, len(queries) + 1))
    assert_equals_truth(wh, sb, sb.truth(API)[API])

    sb.clear_faults()
    seq = log[-1]["seq"]
    monkeypatch.setenv("SOURCES__MARIN_SOCIAL__MAX_CONCURRENT_REQUESTS", "1")
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt_one"))
    one = Warehouse(tmp_path / "one_at_a_time.duckdb")
    one_at_a_time = one.run(API, **PAGES_OF_50).sources[0]
    assert one_at_a_time.status == "loaded", one_at_a_time.message
    assert one_at_a_time.requests["max_in_flight"] == 1
    assert sorted((r["path"], r["query"].get("page")) for r in sb.requests(API, since=seq)) == sorted(
        (r["path"], r["query"].get("page")) for r in log
    )
    assert one_at_a_time.rows == side_by_side.rows
    assert _contents(one) == _contents(wh)


def test_a_walk_leaves_the_params_it_was_given_alone(small):
    """dlt's paginator writes the page number into its request's params: lists walked
    side by side share one params dict, so each walk must ask with its own copy (a
    walk that saw another's ``page=2`` read an empty page of a one-page list)."""
    from dlt.sources.helpers.rest_client import RESTClient
    from dlt.sources.helpers.rest_client.auth import APIKeyAuth

    from sources.marin_social import _walk

    sb, _ = small
    env = sb.env()
    client = RESTClient(
        base_url=env["SOURCES__MARIN_SOCIAL__BASE_URL"].rstrip("/") + "/",
        auth=APIKeyAuth(name="key", api_key=env["SOURCES__MARIN_SOCIAL__API_KEY"], location="query"),
        data_selector="data",
    )
    params = {"limit": 1}
    pages = list(_walk(client, "accounts", params))
    assert len(pages) > 1  # one account a page: the walk went past page 1
    assert params == {"limit": 1}


@pytest.mark.parametrize("sandbox_mode", ["doc_shapes"])  # the doc's rows: integer ratios, doc-shaped links
def test_statistics_as_arrow_tables_load_what_dict_rows_load(small, sandbox_mode, monkeypatch, tmp_path, arrow_rows):
    """Statistics handed to dlt as Arrow tables (the default) against the same walks as
    dict rows (arrow_stats=False), over a first load and a restating run after the
    clock moved: the same tables, column types and requests, with side-by-side walks
    (their batches interleave) and the doc's integer ratios ("ctr": 0)."""
    sb, wh = small
    dicts = Warehouse(tmp_path / "dicts.duckdb")
    requests_seen: dict[str, list[int]] = {"arrow": [], "dicts": []}
    stats_loaded = 0
    for _ in range(2):
        for name, target, state in (("arrow", wh, "dlt"), ("dicts", dicts, "dlt-dicts")):
            monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / state))
            seq = (sb.requests(API) or [{"seq": 0}])[-1]["seq"]
            result = target.run(API, marin_social={"page_size": 50, "arrow_stats": name == "arrow"}).sources[0]
            assert result.status == "loaded", result.message
            stats_loaded += sum(result.rows[t] for t in STATS) if name == "arrow" else 0
            requests_seen[name].append(len(sb.requests(API, since=seq)))
        sb.advance(1)
    assert requests_seen["arrow"] == requests_seen["dicts"]
    assert sum(arrow_rows) == stats_loaded > 0  # every statistics row went as Arrow

    def types(target: Warehouse) -> list[tuple]:
        return target.query(
            "select table_name, column_name, data_type from information_schema.columns where table_schema = ? order by 1, 2", [API]
        )

    assert types(wh) == types(dicts)
    assert _contents(wh) == _contents(dicts)
    for table in STATS:
        assert wh.query(f"select count(*) = count(distinct _dlt_id) from {API}.{table}") == [(True,)]


def test_each_page_is_decoded_once_and_a_rewritten_body_again(small, monkeypatch):
    """dlt reads a page's body three times (the data selector, the paginator's
    nb_pages, our range.total check): the shared session decodes it once
    (sources/_shared/http.py), and decodes anew a body a hook rewrote."""
    import types

    from dlt.sources.helpers.rest_client import RESTClient
    from dlt.sources.helpers.rest_client.auth import APIKeyAuth

    from sources._shared import http
    from sources.marin_social import _walk

    decoded: list[bytes] = []
    real = http.orjson

    def loads(body: bytes) -> Any:
        decoded.append(body)
        return real.loads(body)

    monkeypatch.setattr(http, "orjson", types.SimpleNamespace(loads=loads, JSONDecodeError=real.JSONDecodeError))
    sb, _ = small
    env = sb.env()
    http.reset_clients()
    client = RESTClient(
        base_url=env["SOURCES__MARIN_SOCIAL__BASE_URL"].rstrip("/") + "/",
        auth=APIKeyAuth(name="key", api_key=env["SOURCES__MARIN_SOCIAL__API_KEY"], location="query"),
        session=http.session_for(API, secrets=[env["SOURCES__MARIN_SOCIAL__API_KEY"]]),
        data_selector="data",
    )
    pages = list(_walk(client, "accounts", {"limit": 1}))
    assert len(pages) > 1
    assert len(decoded) == len(pages)  # 3 per page before
    assert [p[0]["id"] for p in pages] == [real.loads(body)["data"][0]["id"] for body in decoded]

    response = pages[0].response
    first = response.json()
    assert response.json() is first
    response._content = b'{"data": [], "range": {"total": 0}}'  # a hook rewriting the body
    assert response.json() == {"data": [], "range": {"total": 0}}
    http.reset_clients()
