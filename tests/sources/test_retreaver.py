"""Retreaver source against the sandbox: calls merged on uuid (incremental on
updated_at, newest first), catalogue re-read, reports restated over a lookback."""

from __future__ import annotations

import copy
import threading
import time
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import duckdb
import pytest
from dlt.sources.helpers.rest_client import RESTClient

from sandbox.server import SandboxThread
from sources._shared import http
from sources.retreaver.helpers import page_of
from sources.retreaver.settings import CATALOGUE_KEYS, TABLE_COLUMNS
from tests.conftest import TEST_NOW, TEST_SEED, both_sandbox_modes
from tests.transforms.staging import STAGING_DIR, plain_sql

# Requests of a run with nothing new: 1 calls page (the walk stops at the first row
# older than cursor - lag) and the calls page 2 asked ahead while page 1 was
# processed (prefetch_next_page: the walk ended before taking it), 2 pages each for campaigns/affiliates/targets/numbers
# (every walk ends on an empty page), 2 for the daily report over [last day - 4,
# tomorrow) and 2 for each campaign report of a day of that window with calls (the
# sandbox's last 5 days all have calls).
NOOP_REQUESTS = 1 + 1 + 4 * 2 + 2 + 5 * 2
CALLS = "/api/v2/calls.json"


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
    with warehouse.reading():
        assert call_totals(warehouse) == expected_call_totals(t)
        assert warehouse.scalar("select max(updated_at) from retreaver.calls").isoformat(timespec="milliseconds").replace("+00:00", "Z") == t["calls"]["max_updated_at"]
        assert warehouse.scalar("select count(*) from retreaver.calls where tag_utm_campaign is not null") == t["calls"]["with_utm_campaign"]
        for table in ("report_daily", "report_campaign_daily"):
            assert report_totals(warehouse, table) == expected_report_totals(t, table), table
        assert warehouse.scalar("select count(*) - count(distinct (day, campaign_id)) from retreaver.report_campaign_daily") == 0
        for table, key in CATALOGUE_KEYS.items():
            n = t[table]["count"]
            assert warehouse.query(f"select count(*), count(distinct {key}) from retreaver.{table}")[0] == (n, n), table


def loaded(result: Any) -> Any:
    (source,) = result.sources
    assert source.status == "loaded", source.message
    return source


@both_sandbox_modes
def test_full_load_equals_truth_then_noop_run_is_cheap(sandbox, warehouse):
    """Doc-shaped: v2 pages carry no Link header, full pages are not the end."""
    source = loaded(warehouse.run("retreaver"))
    assert_equals_truth(warehouse, sandbox)
    # Every walk ends on an empty page: calls, 4 catalogue indexes (one page each),
    # the daily report and one campaign report per day.
    calls_pages = -(-truth(sandbox)["calls"]["count"] // 100)
    days = truth(sandbox)["report_daily"]["count"]
    assert source.requests["requests"] == calls_pages + 1 + 4 * 2 + 2 + days * 2

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
    noop = sandbox.requests("retreaver", since=seq)
    assert len(noop) == NOOP_REQUESTS
    # The one page asked ahead in vain is calls page 2, asked once; its thread is gone.
    assert [r["query"]["page"] for r in noop if r["path"] == CALLS] == ["1", "2"]
    assert not [t for t in threading.enumerate() if t.name == "retreaver-next-page"]
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
    full = -(-before["calls"]["count"] // 100) + 1  # the first run's walk ended on an empty page
    # The walk stops on the page holding the first call older than the cursor - lag,
    # plus the page after it, asked ahead while that page was processed.
    assert len(calls_requests) - full == -(-(source.rows["calls"] + 1) // 100) + 1


@both_sandbox_modes
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


@both_sandbox_modes
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


# ------------------------------------------------------------ backfill window
CATALOGUE_PATHS = ("/campaigns.json", "/affiliates.json", "/targets.json", "/numbers.json")


def source_state(warehouse: Any) -> tuple[dict[str, Any], tuple]:
    """The retreaver source state as the runner's pipeline keeps it locally (calls'
    incremental cursor, report_daily's last_day), and the state rows in the warehouse."""
    from pipelines.warehouse import make_pipeline

    state = make_pipeline("retreaver", warehouse.path).state
    stored = warehouse.query("select count(*), max(version) from retreaver._dlt_pipeline_state")[0]
    return copy.deepcopy(dict(state["sources"]["retreaver"])), stored


def table_rows(warehouse: Any) -> dict[str, dict[Any, tuple]]:
    """Every row of the windowed tables by primary key: its UTC day first, then
    figures, then the load id."""
    return {
        "calls": {
            r[0]: r[1:]
            for r in warehouse.query(
                "select uuid, strftime(timezone('UTC', created_at), '%Y-%m-%d'), updated_at, converted, revenue, payout, "
                "total_cost, _dlt_load_id from retreaver.calls"
            )
        },
        "report_daily": {
            r[0]: (r[0].isoformat(), *r[1:])
            for r in warehouse.query("select day, total_calls, converted_count, revenue, cost, _dlt_load_id from retreaver.report_daily")
        },
        "report_campaign_daily": {
            (r[0], r[1]): (r[0].isoformat(), *r[2:])
            for r in warehouse.query(
                "select day, campaign_id, total_calls, converted_count, revenue, _dlt_load_id from retreaver.report_campaign_daily"
            )
        },
    }


def without_load_id(rows: dict[str, dict[Any, tuple]]) -> dict[str, dict[Any, tuple]]:
    return {t: {k: v[:-1] for k, v in by_key.items()} for t, by_key in rows.items()}


def window_figures(warehouse: Any, start: str, end: str) -> dict[str, tuple]:
    """Per UTC day of [start, end): calls (count, converted, revenue, payout, cost) and
    report_daily (total_calls, converted_count, revenue, payout, cost)."""
    calls = warehouse.query(
        "select strftime(timezone('UTC', created_at), '%Y-%m-%d') as d, count(*), count(*) filter (where converted), "
        "coalesce(sum(revenue), 0), coalesce(sum(payout), 0), sum(total_cost) from retreaver.calls "
        "where d >= ? and d < ? group by d",
        [start, end],
    )
    reports = warehouse.query(
        "select strftime(day, '%Y-%m-%d') as d, total_calls, converted_count, revenue, payout, cost "
        "from retreaver.report_daily where d >= ? and d < ?",
        [start, end],
    )
    return {"calls": {r[0]: r[1:] for r in calls}, "report_daily": {r[0]: r[1:] for r in reports}}


@both_sandbox_modes
def test_backfill_window_loads_created_calls_and_report_days_without_touching_state(sandbox, warehouse):
    t = truth(sandbox)
    days = sorted(t["calls_by_day"])
    # A normal run from days[-5] (calls UPDATED since then: every call created since,
    # some older converted ones), then a backfill of the three days before it.
    start, end = days[-8], days[-5]
    window_days = days[-8:-5]
    loaded(warehouse.run("retreaver", retreaver={"start_date": end}))
    state_before = source_state(warehouse)
    assert state_before[0]["resources"]["calls"]["incremental"]  # a cursor exists...
    assert state_before[0]["resources"]["report_daily"]["last_day"] == days[-1]  # ...and a last day
    rows_before = table_rows(warehouse)
    assert min(rows_before["report_daily"]).isoformat() == end  # the window's report days are not loaded yet
    assert not window_figures(warehouse, start, end)["report_daily"]

    seq = sandbox.requests("retreaver")[-1]["seq"]
    window = {"start_date": start, "end_date": end}
    source = loaded(warehouse.run("retreaver", retreaver=window))

    # Every day of the window equals the sandbox's truth, calls and report alike.
    expected = {
        d: (v["count"], v["converted"], Decimal(v["revenue"]), Decimal(v["payout"]), Decimal(v["cost"]))
        for d, v in t["calls_by_day"].items()
        if d in window_days
    }
    assert window_figures(warehouse, start, end) == {"calls": expected, "report_daily": expected}
    # End exclusive: exactly the calls created in the window's UTC days, one report row per day.
    assert source.rows["calls"] == sum(v[0] for v in expected.values())
    assert source.rows["report_daily"] == 3
    assert set(source.rows) == {"calls", "report_daily", "report_campaign_daily"}  # no catalogue table
    after = table_rows(warehouse)
    for table in after:
        assert len(after[table]) == len({*after[table]}), table
        # Rows outside the window (the normal run's) were not rewritten: same load id.
        for key, value in rows_before[table].items():
            if not start <= value[0] < end:
                assert after[table][key] == value, (table, key)
    assert warehouse.scalar("select count(*) - count(distinct uuid) from retreaver.calls") == 0
    assert warehouse.scalar("select count(*) - count(distinct (day, campaign_id)) from retreaver.report_campaign_daily") == 0

    # The requests used the window's parameters; no catalogue endpoint was called.
    log = sandbox.requests("retreaver", since=seq)
    assert not [r for r in log if r["path"] in CATALOGUE_PATHS]
    calls_requests = [r for r in log if r["path"] == "/api/v2/calls.json"]
    assert len(calls_requests) == -(-source.rows["calls"] // 100) + 1  # + the empty page
    for r in calls_requests:
        q = r["query"]
        assert (q["created_at_start"], q["created_at_end"]) == (f"{start}T00:00:00+00:00", f"{end}T00:00:00+00:00")
        assert (q["sort_by"], q["order"], q["per_page"]) == ("created_at", "asc", "100")
    reports = [r["query"] for r in log if r["path"] == "/api/v1/reports.json"]
    # Page 1 of each report, then its empty page 2.
    assert [(q["created_at_start"], q["created_at_end"], q["page"]) for q in reports if q["facet"] == "daily"] == [(start, end, "1"), (start, end, "2")]
    assert sorted(q["created_at_start"] for q in reports if q["facet"] == "campaign" and q["page"] == "1") == window_days
    assert len(reports) == 2 * (1 + len(window_days))
    assert len(log) == len(calls_requests) + len(reports)

    # The cursor and last_day are exactly as the normal run left them.
    assert source_state(warehouse) == state_before

    # The same backfill again changes nothing but load ids: same rows, same figures.
    loaded(warehouse.run("retreaver", retreaver=window))
    assert without_load_id(table_rows(warehouse)) == without_load_id(after)
    assert source_state(warehouse) == state_before

    # And the next normal run carries on from its own cursor: a no-op.
    seq = sandbox.requests("retreaver")[-1]["seq"]
    loaded(warehouse.run("retreaver"))
    assert len(sandbox.requests("retreaver", since=seq)) == NOOP_REQUESTS
    assert without_load_id(table_rows(warehouse))["calls"] == without_load_id(after)["calls"]


def test_backfill_end_date_without_start_date_is_refused(sandbox, warehouse):
    from sources.retreaver import retreaver_source

    with pytest.raises(ValueError, match="retreaver: end_date .*needs start_date"):
        retreaver_source(end_date="2026-01-08")
    with pytest.raises(ValueError, match="retreaver: end_date .* must be after start_date"):
        retreaver_source(start_date="2026-01-08", end_date="2026-01-08")
    # Through the runner (as the backfill command calls it): the source fails, nothing asked.
    (source,) = warehouse.run("retreaver", retreaver={"end_date": "2026-01-08"}).sources
    assert source.status == "failed"
    assert "retreaver" in source.message and "end_date" in source.message and "start_date" in source.message
    assert sandbox.requests("retreaver") == []


# ------------------------------------------------------- doc shapes, loud failures
STAGING = sorted(STAGING_DIR.glob("stg_retreaver__*.sql"))


@pytest.mark.parametrize("sandbox_mode", ["doc_shapes"])
def test_doc_shapes_full_pages_without_link_and_null_only_columns(sandbox, warehouse):
    """v2 pages without Link (doc): a full page is not the end. Catalogue rows with
    only the documented keys (no "id" on campaigns/affiliates) and a v2
    system_affiliate_id that is always null still give every declared column, and
    the staging models run."""
    t = truth(sandbox)
    start = recent_start(sandbox)
    created_since = sum(v["count"] for d, v in t["calls_by_day"].items() if d >= start)
    source = loaded(warehouse.run("retreaver", retreaver={"start_date": start}))
    assert created_since > 300 and source.rows["calls"] >= created_since
    pages = [r for r in sandbox.requests("retreaver") if r["path"] == "/api/v2/calls.json"]
    assert [r["query"]["page"] for r in pages] == [str(n) for n in range(1, len(pages) + 1)]
    for table, columns in TABLE_COLUMNS.items():
        present = {r[0] for r in warehouse.query(
            "select column_name from information_schema.columns where table_schema = 'retreaver' and table_name = ?", [table]
        )}
        assert set(columns) <= present, (table, set(columns) - present)
    assert warehouse.scalar("select count(*) from retreaver.calls where system_affiliate_id is not null") == 0
    assert warehouse.query("select count(*), count(id), count(distinct cid) from retreaver.campaigns")[0] == (t["campaigns"]["count"], 0, t["campaigns"]["count"])
    assert warehouse.query("select count(*), count(distinct afid) from retreaver.affiliates")[0] == (t["affiliates"]["count"],) * 2
    assert len(STAGING) == 3
    for path in STAGING:
        assert warehouse.query(f"select count(*) from ({plain_sql(path)})")[0][0] > 0, path.name


def test_catalogue_rows_without_their_key_are_counted_and_do_not_sink_the_calls(sandbox, warehouse, monkeypatch):
    from sandbox.retreaver import routes

    render = routes.render_target

    def without_id(store: Any, index: int) -> dict[str, Any]:
        row = render(store, index)
        if index % 5 == 0:
            del row["target"]["id"]
        return row

    monkeypatch.setattr(routes, "render_target", without_id)
    t = truth(sandbox)
    dropped = len(range(0, t["targets"]["count"], 5))
    source = loaded(warehouse.run("retreaver", retreaver={"start_date": sorted(t["calls_by_day"])[-2]}))
    assert source.rows["calls"] > 0 and source.rows["campaigns"] == t["campaigns"]["count"]
    assert warehouse.scalar("select count(*) from retreaver.targets") == t["targets"]["count"] - dropped
    assert source.requests["skipped_entities"] == dropped
    assert {s["endpoint"] for s in source.requests["skipped"]} == {"GET /targets.json"}


@pytest.mark.parametrize(
    ("kind", "path"),
    [("429", "/api/v2/calls.json"), ("404", "/targets.json"), ("404", "/api/v1/reports.json")],
)
def test_persistent_error_on_one_endpoint_fails_the_source_loudly(sandbox, warehouse, monkeypatch, kind, path):
    monkeypatch.setenv("RUNTIME__REQUEST_MAX_ATTEMPTS", "2")
    sandbox.add_fault(kind, api="retreaver", path_contains=path, retry_after=0)
    start = sorted(truth(sandbox)["calls_by_day"])[-1]
    (source,) = warehouse.run("retreaver", retreaver={"start_date": start}).sources
    assert source.status == "failed"
    assert "retreaver" in source.message and kind in source.message and path in source.message, source.message
    assert sandbox.env()["SOURCES__RETREAVER__API_KEY"] not in source.message
    hits = [r for r in sandbox.requests("retreaver") if path in r["path"]]
    assert len(hits) == (2 if kind == "429" else 1)  # 429 retried, 404 not


def test_a_walk_that_never_ends_fails_loudly(sandbox, warehouse):
    (source,) = warehouse.run("retreaver", retreaver={"max_pages": 3}).sources
    assert source.status == "failed"
    assert "retreaver" in source.message and "MAX_PAGES" in source.message, source.message


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ({"utm_campaign": "spring", "email": "A@x.test"}, ("spring", None, "A@x.test")),
        ({"utm_campaign": "spring,summer", "utm_source": " fb "}, ("spring", "fb", None)),  # doc: values comma-joined
        ({"utm_campaign": ["spring", "summer"], "utm_source": []}, ("spring", None, None)),
        ([{"key": "utm_source", "value": "fb", "id": 1}, {"key": "email", "value": "a@x.test"}], (None, "fb", "a@x.test")),
        (None, (None, None, None)),
        ({}, (None, None, None)),
    ],
)
def test_tags_are_flattened_from_every_shape(tags, expected):
    from sources.retreaver.helpers import call_shaper

    call = call_shaper("email")({"uuid": "u", "tags": tags, "revenue": 5.0, "total_cost": "0.08"})
    assert (call["tag_utm_campaign"], call["tag_utm_source"], call["tag_email"]) == expected
    assert call["revenue"] == Decimal("5.0") and call["total_cost"] == Decimal("0.08")
    assert call_shaper("caller_email")({"tags": {"caller_email": "b@x.test", "email": "no"}})["tag_email"] == "b@x.test"


def test_report_timezone_sets_the_window_midnights():
    from datetime import date

    from sources.retreaver.helpers import rfc3339_midnight

    assert rfc3339_midnight(date(2026, 1, 5), "UTC") == "2026-01-05T00:00:00+00:00"
    assert rfc3339_midnight(date(2026, 1, 5), "America/New_York") == "2026-01-05T00:00:00-05:00"


# ------------------------------------------------- next page asked ahead (prefetch)
def recent_start(sandbox: Any) -> str:
    """The latest start_date whose calls walk holds more than three pages. The world
    is dated from today, so a fixed number of days can hold fewer (one day: 299)."""
    by_day = truth(sandbox)["calls_by_day"]
    created_since = 0
    for day in sorted(by_day, reverse=True):
        created_since += by_day[day]["count"]
        if created_since > 300:
            return day
    raise AssertionError(f"the whole world holds only {created_since} calls")


@pytest.mark.parametrize("prefetch", [True, False])
def test_next_calls_page_arrives_while_the_page_before_is_processed(sandbox, warehouse, monkeypatch, prefetch):
    """Every calls answer 100 ms late. The walk's own request for page N+1 (dlt's
    RESTClient, after page N went through every processing step) waits 50 ms more,
    standing for processing. With prefetch_next_page, page N+1 reached the sandbox
    before that request was made (it was asked when page N arrived); without it,
    always after. Either way a page is asked only once the one before it has been
    answered (one page ahead at most) and the rows are the same."""
    asked: dict[int, float] = {}
    send_request = RESTClient._send_request

    def processing_then_send(self: Any, request: Any, **kwargs: Any) -> Any:
        if CALLS in (request.url or ""):
            time.sleep(0.05)
            page = page_of(request.url) if request.params is None else int((request.params or {}).get("page", 1))
            asked.setdefault(page, datetime.now().timestamp())
        return send_request(self, request, **kwargs)

    monkeypatch.setattr(RESTClient, "_send_request", processing_then_send)
    sandbox.add_fault("slow", api="retreaver", path_contains=CALLS, delay=0.1)
    source = loaded(warehouse.run("retreaver", retreaver={"start_date": recent_start(sandbox), "prefetch_next_page": prefetch}))

    log = [r for r in sandbox.requests("retreaver") if r["path"] == CALLS]
    arrived = {int(r["query"]["page"]): datetime.fromisoformat(r["at"]).timestamp() for r in log}
    assert sorted(arrived) == list(range(1, len(log) + 1)) and len(log) >= 4  # each page once, in order
    later = [n for n in arrived if n >= 2 and n in asked]
    assert len(later) >= 3
    if prefetch:
        assert all(arrived[n] < asked[n] for n in later), (arrived, asked)
        assert source.requests["max_in_flight"] >= 2
    else:
        assert all(arrived[n] > asked[n] for n in later), (arrived, asked)
        assert source.requests["max_in_flight"] == 1
    # One ahead at most: a page never reached the sandbox before the one before it was answered.
    times = [arrived[n] for n in sorted(arrived)]
    assert min(b - a for a, b in zip(times, times[1:])) >= 0.1
    # Nothing moved during the walk: every call read once, none lost to a page dropped.
    count, distinct = call_totals(warehouse)[:2]
    assert count == distinct == source.rows["calls"] > 300


def fault_on_page_asked_ahead(monkeypatch: Any, sandbox: Any, kind: str, count: int | None) -> list[str]:
    """Add fault ``kind`` on the calls path just as calls page 2 is first sent: the
    names of the threads that sent it (the prefetch thread when asked ahead)."""
    send = http.MeteredAdapter.send
    senders: list[str] = []

    def send_with_fault(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        if not senders and CALLS in (request.url or "") and page_of(request.url) == 2:
            senders.append(threading.current_thread().name)
            sandbox.add_fault(kind, api="retreaver", path_contains=CALLS, count=count, retry_after=1)
        return send(self, request, *args, **kwargs)

    monkeypatch.setattr(http.MeteredAdapter, "send", send_with_fault)
    return senders


@pytest.mark.parametrize("kind", ["503", "429", "drop"])
def test_an_error_on_a_page_asked_ahead_is_retried_like_any_other(sandbox, warehouse, monkeypatch, kind):
    """The prefetched answer goes through dlt's retry loop and the error hook as if
    the walk had just received it: a 503 or a 429 (after its Retry-After) is asked
    again, a dropped connection too; never an empty page. The load equals truth."""
    senders = fault_on_page_asked_ahead(monkeypatch, sandbox, kind, count=1)
    source = loaded(warehouse.run("retreaver"))
    assert senders == ["retreaver-next-page"]
    assert_equals_truth(warehouse, sandbox)
    page2 = [r for r in sandbox.requests("retreaver") if r["path"] == CALLS and r["query"]["page"] == "2"]
    assert [r["status"] for r in page2] == [None if kind == "drop" else int(kind), 200]
    waited = datetime.fromisoformat(page2[1]["at"]) - datetime.fromisoformat(page2[0]["at"])
    if kind == "429":
        assert waited >= timedelta(seconds=0.95)  # Retry-After: 1, honoured
    counter = {"503": "server_errors", "429": "throttled", "drop": "connection_errors"}[kind]
    assert source.requests[counter] == 1


def test_a_persistent_error_from_a_page_asked_ahead_fails_the_source_loudly(sandbox, warehouse, monkeypatch):
    monkeypatch.setenv("RUNTIME__REQUEST_MAX_ATTEMPTS", "2")
    senders = fault_on_page_asked_ahead(monkeypatch, sandbox, "503", count=None)
    (source,) = warehouse.run("retreaver", retreaver={"start_date": recent_start(sandbox)}).sources
    assert senders == ["retreaver-next-page"]
    assert source.status == "failed"
    assert "retreaver" in source.message and "503" in source.message and CALLS in source.message, source.message
    assert sandbox.env()["SOURCES__RETREAVER__API_KEY"] not in source.message
    calls = [(r["query"]["page"], r["status"]) for r in sandbox.requests("retreaver") if r["path"] == CALLS]
    # Page 2 asked ahead (attempt 1) and asked again by dlt's retry (attempt 2): like any request.
    assert calls == [("1", 200), ("2", 503), ("2", 503)]


def ahead_over_fake_pages(sent: list[int]) -> Any:
    """A NextPageAhead over a fake adapter (no sandbox): each page answers
    ``[{"page": N, "sent": <requests so far>}]`` and its number goes to ``sent``."""
    from requests import Response
    from requests.adapters import BaseAdapter

    from sources.retreaver.helpers import NextPageAhead

    class Fake(BaseAdapter):
        def send(self, request: Any, **kwargs: Any) -> Response:
            sent.append(page_of(request.url))
            response = Response()
            response.status_code, response.url, response.request = 200, request.url, request
            response._content = f'[{{"page": {page_of(request.url)}, "sent": {len(sent)}}}]'.encode()
            return response

        def close(self) -> None:
            pass

    ahead = NextPageAhead("retreaver-unit-test")
    ahead.inner = Fake()
    return ahead


def test_a_walk_whose_fetcher_could_not_start_sends_its_pages_itself_then_asks_ahead_again(monkeypatch):
    """No thread to be had for the page asked ahead: the walk sends that page itself,
    and the next page is asked ahead by a fetcher started then, never waited for
    in vain."""
    from requests import Request

    from sources.retreaver.helpers import PageWalkPaginator

    sent: list[int] = []
    ahead = ahead_over_fake_pages(sent)
    session = ahead.session
    paginator = PageWalkPaginator("retreaver", 10, ahead)
    request = Request("GET", "http://x.test/calls.json", params={"per_page": 1})
    paginator.init_request(request)
    start = threading.Thread.start
    refused: list[str] = []

    def no_thread_once(thread: threading.Thread) -> None:
        if not refused:
            refused.append(thread.name)
            raise RuntimeError("can't start new thread")
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", no_thread_once)
    answers: list[Any] = []
    for _ in range(3):  # pages 1, 2 (its fetcher refused), 3 (asked ahead)
        walker = threading.Thread(target=lambda: answers.append(session.send(session.prepare_request(request))), daemon=True)
        start(walker)
        walker.join(5)
        assert not walker.is_alive(), f"page {len(answers) + 1} waited for a fetcher that never ran"
        paginator.update_state(answers[-1], answers[-1].json())
        paginator.update_request(request)
    assert refused == ["retreaver-unit-test-next-page"]
    assert [a.json()[0]["page"] for a in answers] == [1, 2, 3]
    assert sent[:3] == [1, 2, 3]  # each page sent once


def test_a_page_asked_ahead_is_handed_only_to_the_walk_that_asked_for_it():
    """No sandbox: a fake adapter under NextPageAhead. Page 2 asked ahead is taken by
    its walk's request; once the walk is over (its paginator starts another walk,
    or dlt drops the walk's Request) the same URL is sent again, never answered
    from a stale page."""
    import gc

    from requests import Request

    from sources.retreaver.helpers import PageWalkPaginator

    sent: list[int] = []
    ahead = ahead_over_fake_pages(sent)
    session = ahead.session

    def walk_to_page_2(paginator: PageWalkPaginator) -> Request:
        request = Request("GET", "http://x.test/calls.json", params={"per_page": 1})
        paginator.init_request(request)
        first = session.send(session.prepare_request(request))
        paginator.update_state(first, first.json())
        paginator.update_request(request)  # page 2 asked ahead
        for _ in range(200):
            if sent[-1:] == [2]:
                break
            time.sleep(0.01)
        return request

    paginator = PageWalkPaginator("retreaver", 10, ahead)
    request = walk_to_page_2(paginator)
    assert sent == [1, 2]
    second = session.send(session.prepare_request(request))
    assert second.json() == [{"page": 2, "sent": 2}]  # taken, not sent again
    assert sent == [1, 2]

    # The walk asks page 3 ahead, then ends (the paginator starts another walk).
    paginator.update_state(second, second.json())
    paginator.update_request(request)
    stale = session.prepare_request(request)
    while sent[-1:] != [3]:
        time.sleep(0.01)
    walk_to_page_2(paginator)
    assert session.send(stale).json() == [{"page": 3, "sent": 6}]  # asked again, not the stale answer

    # dlt dropping the walk's Request ends the walk too.
    other = PageWalkPaginator("retreaver", 10, ahead)
    request = walk_to_page_2(other)
    url = session.prepare_request(request).url
    del request
    gc.collect()
    answer = session.send(session.prepare_request(Request("GET", url)))
    assert answer.json()[0]["sent"] == len(sent) and sent[-2:] == [2, 2]


# ------------------------------------------------------- calls as Arrow tables
def test_calls_as_arrow_tables_load_what_dict_rows_load(sandbox, warehouse, tmp_path, monkeypatch, arrow_rows):
    """The call log handed to dlt as Arrow tables (sources/_shared/arrow.py, the
    default) against the same walks as dict rows (arrow_calls=False): a first load
    and an incremental run after the clock moved give the same tables, types and
    requests, and the Arrow path was taken."""
    start = recent_start(sandbox)
    dicts = type(warehouse)(tmp_path / "dicts.duckdb")
    requests: dict[str, list[int]] = {"arrow": [], "dicts": []}
    arrow_calls_loaded = 0
    for _ in range(2):
        for name, target, state in (("arrow", warehouse, "dlt"), ("dicts", dicts, "dlt-dicts")):
            monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / state))
            seq = sandbox.requests("retreaver")[-1]["seq"] if sandbox.requests("retreaver") else 0
            source = loaded(target.run("retreaver", retreaver={"start_date": start, "arrow_calls": name == "arrow"}))
            arrow_calls_loaded += source.rows["calls"] if name == "arrow" else 0
            requests[name].append(len(sandbox.requests("retreaver", since=seq)))
        sandbox.advance(1)
    assert requests["arrow"] == requests["dicts"]
    assert sum(arrow_rows) == arrow_calls_loaded > warehouse.scalar("select count(*) from retreaver.calls") > 300  # none as dicts

    def columns(target: Any) -> dict[str, str]:
        return dict(target.query("select column_name, data_type from information_schema.columns where table_schema = 'retreaver' and table_name = 'calls'"))

    assert columns(warehouse) == columns(dicts)
    names = ", ".join(f'"{c}"' for c in columns(dicts) if not c.startswith("_dlt"))
    with duckdb.connect() as con:
        con.execute(f"attach '{warehouse.path}' as a (read_only)")
        con.execute(f"attach '{dicts.path}' as d (read_only)")
        for left, right in (("a", "d"), ("d", "a")):
            differ = f"select count(*) from (select {names} from {left}.retreaver.calls except all select {names} from {right}.retreaver.calls)"
            assert con.execute(differ).fetchone() == (0,), (left, right)
        assert con.execute("select count(*) = count(distinct _dlt_id), count(_dlt_load_id) = count(*) from a.retreaver.calls").fetchone() == (True, True)
