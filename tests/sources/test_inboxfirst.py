"""InboxFirst source against the sandbox: campaigns (details merged on id, stat_summary
flattened, content_stats child table) and link_stats (merged on campaign_id, link_id),
with sends inside the window re-read each run, one cursor per mailing list."""

from __future__ import annotations

import base64
import copy
import logging
import math
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import dlt
import pytest
import requests
from dlt.sources.helpers.rest_client.exceptions import IgnoreResponseException

from pipelines.warehouse import make_pipeline
from sources._shared.http import session_for, stats_for
from sources.inboxfirst.helpers import InboxFirstError, check_envelope, parse_mailing_list_ids, skip_bad_envelope
from sources.inboxfirst.settings import LINK_STATS_PAGE_SIZE, STAT_COUNTERS
from tests.conftest import both_sandbox_modes
from tests.sources.conftest import peak_arrivals_within
from tests.transforms.staging import STAGING_DIR, plain_sql

WINDOW_DAYS = 30  # the source's default
STAGING_SQL = plain_sql(STAGING_DIR / "stg_inboxfirst__campaigns.sql")


@pytest.fixture
def sandbox_scale() -> float:
    """InboxFirst's sends and links are the same at every scale <= 1 (55 campaigns,
    52 sent, 9,345 links at 1, 0.25 and 0.05: sandbox/inboxfirst/models.py); only
    the recipient counts scale. So the same requests and pages, and the sandbox's
    reset (it builds every API's world) is cheaper at 0.05 than at 1."""
    return 0.05


def campaign_totals(warehouse):
    sums = ", ".join(f"sum(stat_summary__{f})" for f in STAT_COUNTERS)
    row = warehouse.query(f"select count(*), {sums} from inboxfirst.campaigns")[0]
    return dict(zip(["count", *STAT_COUNTERS], row))


def link_totals(warehouse):
    row = warehouse.query(
        "select count(*), sum(clicks_total), sum(clicks_unique), sum(clicks_unique_by_link) from inboxfirst.link_stats"
    )[0]
    return dict(zip(["count", "clicks_total", "clicks_unique", "clicks_unique_by_link"], row))


def expected_campaigns(sandbox):
    truth = sandbox.truth("inboxfirst")["inboxfirst"]["campaigns"]
    # The documented started_at__start filter lists only sends (never idle drafts):
    # the table holds every campaign whose send started. Sends answering
    # stat_summary: null (doc-shaped mode) add no figures.
    return {"count": truth["count_sent"], **{f: truth[f"sum_{f}"] for f in STAT_COUNTERS}}


def expected_links(sandbox):
    truth = sandbox.truth("inboxfirst")["inboxfirst"]["link_stats"]
    return {k: truth["count" if k == "count" else f"sum_{k}"] for k in ("count", "clicks_total", "clicks_unique", "clicks_unique_by_link")}


def assert_equals_truth(sandbox, warehouse):
    assert campaign_totals(warehouse) == expected_campaigns(sandbox)
    assert link_totals(warehouse) == expected_links(sandbox)
    assert_no_duplicate_keys(warehouse)


def assert_no_duplicate_keys(warehouse):
    assert warehouse.scalar("select count(*) - count(distinct id) from inboxfirst.campaigns") == 0
    assert warehouse.scalar("select count(*) - count(distinct (campaign_id, link_id)) from inboxfirst.link_stats") == 0
    # content_stats rows of a re-read campaign are replaced, not appended.
    assert warehouse.scalar(
        "select count(*) - count(distinct (_dlt_parent_id, content__id)) from inboxfirst.campaigns__content_stats"
    ) == 0


def expected_requests(warehouse, since: datetime | None):
    """Campaign ids whose send started at/after ``since`` and the requests they cost:
    one details request plus ceil(links / 500) link_stats pages (at least one)."""
    rows = warehouse.query(
        "select c.id, count(l.link_id) from inboxfirst.campaigns c "
        "left join inboxfirst.link_stats l on l.campaign_id = c.id "
        "where ? is null or c.dispatch__started_at >= ? group by c.id",
        [since, since],
    )
    ids = {r[0] for r in rows}
    pages = sum(max(1, math.ceil(n / LINK_STATS_PAGE_SIZE)) for _, n in rows)
    return ids, len(ids) + pages


def detail_ids(requests_log):
    return {int(r["path"].rsplit("/", 1)[1]) for r in requests_log if r["path"].rsplit("/", 2)[-2] == "campaigns"}


@both_sandbox_modes
def test_full_load_equals_truth(sandbox, warehouse, sandbox_mode):
    """Doc-shaped mode: the list answers {"error_message": null, "data": [...]} (no
    success key, doc example) and some sends answer stat_summary: null."""
    result = warehouse.run("inboxfirst")
    (source,) = result.sources
    assert source.status == "loaded", source.message
    assert source.requests["skipped_entities"] == 0
    assert_equals_truth(sandbox, warehouse)
    truth = sandbox.truth("inboxfirst")["inboxfirst"]["campaigns"]
    # A send without stat_summary loads with NULL stats, never zeros.
    null_stats = warehouse.scalar("select count(*) from inboxfirst.campaigns where stat_summary__messages_sent is null")
    assert null_stats == truth["count_stat_summary_null"]
    assert (null_stats > 0) == (sandbox_mode == "doc_shapes")
    # The staging model builds on what was loaded, one row per send.
    assert warehouse.scalar(f"select count(*) from ({STAGING_SQL})") == truth["count_sent"]
    by_list = dict(warehouse.query("select mailing_list_id, count(*) from inboxfirst.campaigns group by 1"))
    # Every list's count less its one idle draft.
    assert by_list == {int(k): v - 1 for k, v in truth["count_by_mailing_list"].items()}
    # stat_summary equals the sum of its content_stats (the child table is complete).
    assert warehouse.scalar(
        "select sum(stat_summary__clicks_total) from inboxfirst.campaigns__content_stats"
    ) == truth["sum_clicks_total"]
    # Requests: one list per mailing list, then details + link_stats pages per send.
    ids, per_campaign = expected_requests(warehouse, None)
    log = sandbox.requests("inboxfirst")
    assert len(log) == 3 + per_campaign
    assert detail_ids(log) == ids
    assert all(r["query"].get("per_page") == "500" for r in log if r["path"].endswith("/link_stats"))
    types = dict(
        warehouse.query(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'inboxfirst' and table_name = 'campaigns'"
        )
    )
    assert types["dispatch__started_at"] == "TIMESTAMP WITH TIME ZONE"
    assert types["created_at"] == "TIMESTAMP WITH TIME ZONE"
    assert types["stat_summary__clicks_total"] == "BIGINT"
    assert types["dispatch__autowinner_percentage"].startswith("DECIMAL")
    assert isinstance(warehouse.scalar("select max(dispatch__autowinner_percentage) from inboxfirst.campaigns"), Decimal)


def test_start_date_bounds_the_first_run(sandbox, warehouse, monkeypatch):
    now = datetime.fromisoformat(sandbox.clock()["now"])
    start = (now - timedelta(days=14)).replace(microsecond=0)
    monkeypatch.setenv("SOURCES__INBOXFIRST__START_DATE", start.isoformat())
    assert warehouse.run("inboxfirst").sources[0].status == "loaded"
    lists = [r for r in sandbox.requests("inboxfirst") if r["path"].endswith("/campaigns")]
    assert len(lists) == 3
    assert {r["query"]["started_at__start"] for r in lists} == {start.strftime("%Y-%m-%dT%H:%M:%SZ")}
    assert warehouse.scalar("select min(dispatch__started_at) from inboxfirst.campaigns") >= start
    assert 0 < warehouse.scalar("select count(*) from inboxfirst.campaigns") < expected_campaigns(sandbox)["count"]


def test_second_run_rereads_only_the_window(sandbox, warehouse):
    warehouse.run("inboxfirst")
    seq = sandbox.requests("inboxfirst")[-1]["seq"]
    before_counts = {t: warehouse.scalar(f"select count(*) from inboxfirst.{t}") for t in ("campaigns", "link_stats", "campaigns__content_stats")}
    before = (campaign_totals(warehouse), link_totals(warehouse))
    started = datetime.now(UTC)
    result = warehouse.run("inboxfirst")
    assert result.sources[0].status == "loaded", result.sources[0].message
    # The window is measured on the source's own clock (the wall clock).
    window_start = started - timedelta(days=WINDOW_DAYS)
    ids, per_campaign = expected_requests(warehouse, window_start)
    log = sandbox.requests("inboxfirst", since=seq)
    assert len(log) == 3 + per_campaign  # measured: 38 (3 lists + 17 details + 18 link pages)
    assert detail_ids(log) == ids
    assert 0 < len(ids) < before[0]["count"]
    # Asked since the window start; older sends are final and never asked for again.
    lists = [r for r in log if r["path"].endswith("/campaigns")]
    assert len(lists) == 3
    asked = datetime.fromisoformat(lists[0]["query"]["started_at__start"].replace("Z", "+00:00"))
    assert abs(asked - window_start) < timedelta(minutes=1)
    # Nothing new: the same rows, the same figures, no duplicates.
    assert {t: warehouse.scalar(f"select count(*) from inboxfirst.{t}") for t in before_counts} == before_counts
    assert (campaign_totals(warehouse), link_totals(warehouse)) == before
    assert_no_duplicate_keys(warehouse)


# Recipient counts scale with the world: at 0.05 a send two days old has single-digit
# clicks, and whether rounding lets them grow in two more days depended on the hour.
@pytest.mark.parametrize("sandbox_scale", [1.0])
def test_advance_picks_up_new_sends_and_grown_stats(sandbox, warehouse):
    warehouse.run("inboxfirst")
    old_ids = {r[0] for r in warehouse.query("select id from inboxfirst.campaigns")}
    before_campaigns, before_links = campaign_totals(warehouse), link_totals(warehouse)
    recent_before = dict(
        warehouse.query(
            "select campaign_id, sum(clicks_total) from inboxfirst.link_stats group by 1"
        )
    )
    sandbox.advance(2)
    seq = sandbox.requests("inboxfirst")[-1]["seq"]
    result = warehouse.run("inboxfirst")
    assert result.sources[0].status == "loaded", result.sources[0].message
    assert_equals_truth(sandbox, warehouse)
    new_ids = {r[0] for r in warehouse.query("select id from inboxfirst.campaigns")} - old_ids
    assert new_ids, "advance(2) brings new sends"
    after_campaigns = campaign_totals(warehouse)
    assert after_campaigns["count"] == before_campaigns["count"] + len(new_ids)
    # Stats of sends younger than a week grew (late opens and clicks), on old campaigns too.
    grown = warehouse.query(
        "select campaign_id, sum(clicks_total) from inboxfirst.link_stats group by 1"
    )
    assert any(cid in recent_before and clicks > recent_before[cid] for cid, clicks in grown)
    assert after_campaigns["opens_total"] > before_campaigns["opens_total"]
    assert link_totals(warehouse)["clicks_total"] > before_links["clicks_total"]
    # Only window sends were asked for details again.
    window_start = datetime.now(UTC) - timedelta(days=WINDOW_DAYS)
    ids, _ = expected_requests(warehouse, window_start - timedelta(minutes=5))
    assert detail_ids(sandbox.requests("inboxfirst", since=seq)) <= ids


def test_drafts_keep_null_stats_and_no_child_rows(sandbox, warehouse):
    """The filtered list never shows idle drafts, but a details answer with
    "stats": null must load as NULL stats (no fake zeros) and no child rows."""
    from sources.inboxfirst import inboxfirst_source

    source = inboxfirst_source()
    # Feed the details resource the three drafts (ids 1-3) and one send (4) directly.
    parent = dlt.resource([[{"id": 1}, {"id": 2}, {"id": 3}, {"id": 4}]], name="some_campaigns", selected=False)
    source.resources["campaigns"].pipe_data_from(parent)
    pipeline = make_pipeline("inboxfirst", warehouse.path)
    pipeline.run(source.with_resources("campaigns", "link_stats"), loader_file_format="parquet")
    rows = warehouse.query(
        "select id, dispatch__state, dispatch__started_at, stat_summary__messages_sent, stat_summary__clicks_total "
        "from inboxfirst.campaigns order by id"
    )
    assert [r[:2] for r in rows] == [(1, "idle"), (2, "idle"), (3, "idle"), (4, "finished")]
    assert all(r[2:] == (None, None, None) for r in rows[:3])
    assert rows[3][3] > 0
    content_parents = warehouse.query(
        "select distinct c.id from inboxfirst.campaigns__content_stats s join inboxfirst.campaigns c on s._dlt_parent_id = c._dlt_id"
    )
    assert content_parents == [(4,)]
    assert warehouse.query("select distinct campaign_id from inboxfirst.link_stats") == [(4,)]


def test_wrong_credentials_fail_at_once_without_retries(sandbox, warehouse, monkeypatch):
    monkeypatch.setenv("SOURCES__INBOXFIRST__API_KEY", "0123456789abcdef0123456789abcdef01234567")
    result = warehouse.run("inboxfirst")
    (source,) = result.sources
    assert source.status == "failed"
    assert "inboxfirst" in source.message
    assert "401" in source.message
    assert "/ga/api/v2/mailing_lists/" in source.message
    assert "0123456789abcdef0123456789abcdef01234567" not in source.message
    assert len(sandbox.requests("inboxfirst")) == 1


def test_recovers_from_429_and_5xx(sandbox, warehouse):
    sandbox.add_fault("429", api="inboxfirst", count=2, retry_after=1)
    sandbox.add_fault("503", api="inboxfirst", count=2)
    result = warehouse.run("inboxfirst")
    assert result.sources[0].status == "loaded", result.sources[0].message
    assert_equals_truth(sandbox, warehouse)
    assert result.sources[0].requests["throttled"] == 2
    assert result.sources[0].requests["server_errors"] == 2


def test_api_key_never_in_warehouse_logs_or_requests(sandbox, warehouse, caplog):
    key = sandbox.env()["SOURCES__INBOXFIRST__API_KEY"]
    basic = base64.b64encode(f"1:{key}".encode()).decode()
    caplog.set_level(logging.DEBUG)
    sandbox.add_fault("503", api="inboxfirst", count=1)
    assert warehouse.run("inboxfirst").sources[0].status == "loaded"
    for text in (caplog.text, str(sandbox.requests("inboxfirst"))):
        assert key not in text and basic not in text
    tables = warehouse.query(
        "select table_name, column_name from information_schema.columns "
        "where table_schema = 'inboxfirst' and data_type = 'VARCHAR'"
    )
    for table, column in tables:
        hits = warehouse.scalar(
            f'select count(*) from inboxfirst."{table}" where contains("{column}", ?) or contains("{column}", ?)',
            [key, basic],
        )
        assert hits == 0, (table, column)


def test_missing_configuration_skips_the_source(sandbox, warehouse, monkeypatch):
    monkeypatch.delenv("SOURCES__INBOXFIRST__MAILING_LIST_IDS")
    (source,) = warehouse.run("inboxfirst").sources
    assert source.status == "skipped"
    assert "SOURCES__INBOXFIRST__MAILING_LIST_IDS" in source.message


def test_mailing_list_ids_accept_comma_lists_and_lists():
    assert parse_mailing_list_ids("1, 2,3") == [1, 2, 3]
    assert parse_mailing_list_ids("[4,5]") == [4, 5]
    assert parse_mailing_list_ids([6, "7"]) == [6, 7]
    with pytest.raises(ValueError):
        parse_mailing_list_ids("")


def _response(status: int, body: dict) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = __import__("json").dumps(body).encode()
    response.url = "https://mail.example.test/ga/api/v2/campaigns/9?x=1"
    response.request = requests.Request("GET", response.url).prepare()
    return response


def test_envelope_without_success_loads_and_success_false_fails_naming_the_endpoint():
    check_envelope(_response(200, {"success": True, "data": [], "error_code": None, "error_message": None}))
    # The doc's campaign-list example: no success, no error_code.
    check_envelope(_response(200, {"error_message": None, "data": [{"id": 1}]}))
    for body in (
        {"success": False, "data": None, "error_code": "boom", "error_message": "it broke"},
        {"data": None, "error_code": "boom", "error_message": "it broke"},  # an error without success
        {"success": True, "data": [], "error_code": None, "error_message": "it broke"},
    ):
        with pytest.raises(InboxFirstError, match=r"inboxfirst: GET /ga/api/v2/campaigns/9 answered 200 with an error"):
            check_envelope(_response(200, body))
    with pytest.raises(InboxFirstError, match="without the data envelope"):
        check_envelope(_response(200, {"success": True}))


def test_error_envelope_for_one_campaign_is_skipped_and_counted(monkeypatch):
    monkeypatch.setattr("sources._shared.http._CLIENTS", {})
    session_for("inboxfirst")
    with pytest.raises(IgnoreResponseException):
        skip_bad_envelope(_response(200, {"success": False, "data": None, "error_code": "gone", "error_message": "deleted"}))
    stats = stats_for("inboxfirst")
    assert stats["skipped_entities"] == 1
    assert stats["skipped"][0]["endpoint"] == "GET /ga/api/v2/campaigns/9"
    assert "gone: deleted" in stats["skipped"][0]["detail"]


def test_error_on_a_mailing_list_fails_the_source(sandbox, warehouse, monkeypatch):
    """The list (per mailing list) stays loud: a 404 (with success: false) fails the
    source, naming endpoint and status; here a list id the account does not have."""
    monkeypatch.setenv("SOURCES__INBOXFIRST__MAILING_LIST_IDS", "1,99")
    (source,) = warehouse.run("inboxfirst").sources
    assert source.status == "failed"
    assert re.search(r"inboxfirst: GET \S*/ga/api/v2/mailing_lists/99/campaigns answered 404", source.message), source.message


def test_persistent_5xx_fails_naming_the_endpoint(sandbox, warehouse):
    sandbox.add_fault("503", api="inboxfirst", count=1000)
    (source,) = warehouse.run("inboxfirst").sources
    assert source.status == "failed"
    assert "503" in source.message and "/ga/api/v2/mailing_lists/" in source.message, source.message


def test_cursor_catches_new_sends_when_the_window_is_past_them(sandbox, warehouse, monkeypatch):
    """A window shorter than the time since the last send: the run asks from the
    cursor (min(cursor, now - window)), re-reads nothing old, and still gets new sends."""
    warehouse.run("inboxfirst")
    last = warehouse.scalar("select max(dispatch__started_at) from inboxfirst.campaigns")
    # The sandbox clock is 10 days behind the wall clock: a 5-day window starts after every send.
    monkeypatch.setenv("SOURCES__INBOXFIRST__WINDOW_DAYS", "5")
    seq = sandbox.requests("inboxfirst")[-1]["seq"]
    warehouse.run("inboxfirst")
    log = sandbox.requests("inboxfirst", since=seq)
    assert len(log) == 3  # the lists only: the send at the cursor is already loaded and final
    # Each list from its own cursor: the latest send loaded from it.
    last_by_list = dict(warehouse.query("select mailing_list_id, max(dispatch__started_at) from inboxfirst.campaigns group by 1"))
    asked = {
        int(r["path"].split("/")[-2]): datetime.fromisoformat(r["query"]["started_at__start"].replace("Z", "+00:00"))
        for r in log
    }
    assert asked == last_by_list
    assert max(asked.values()) == last
    old_ids = {r[0] for r in warehouse.query("select id from inboxfirst.campaigns")}
    sandbox.advance(2)
    seq = sandbox.requests("inboxfirst")[-1]["seq"]
    warehouse.run("inboxfirst")
    ids = {r[0] for r in warehouse.query("select id from inboxfirst.campaigns")}
    new_ids = ids - old_ids
    assert new_ids
    assert detail_ids(sandbox.requests("inboxfirst", since=seq)) == new_ids
    assert len(ids) == expected_campaigns(sandbox)["count"]
    assert_no_duplicate_keys(warehouse)


# ------------------------------------------------------------ backfill window
def inboxfirst_state(warehouse):
    """The source state the runner's pipeline keeps (the CampaignWindow cursor under
    helpers.STATE_KEY) and the state rows stored in the warehouse."""
    state = make_pipeline("inboxfirst", warehouse.path).state
    stored = (
        warehouse.query("select count(*), max(version) from inboxfirst._dlt_pipeline_state")[0]
        if "_dlt_pipeline_state" in warehouse.tables("inboxfirst")
        else None
    )
    return copy.deepcopy(dict(state.get("sources", {}).get("inboxfirst", {}))), stored


def loaded_rows(warehouse):
    """campaigns and link_stats by primary key: start of the send, figures, load id."""
    counters = ", ".join(f"stat_summary__{f}" for f in STAT_COUNTERS)
    return {
        "campaigns": {
            r[0]: r[1:]
            for r in warehouse.query(f"select id, dispatch__started_at, {counters}, _dlt_load_id from inboxfirst.campaigns")
        },
        "link_stats": {
            (r[0], r[1]): r[2:]
            for r in warehouse.query(
                "select l.campaign_id, l.link_id, c.dispatch__started_at, l.url, l.clicks_total, l.clicks_unique, "
                "l.clicks_unique_by_link, l._dlt_load_id from inboxfirst.link_stats l join inboxfirst.campaigns c on c.id = l.campaign_id"
            )
        },
    }


def test_backfill_window_loads_older_sends_without_touching_the_cursor(sandbox, warehouse):
    now = datetime.fromisoformat(sandbox.clock()["now"])
    start = (now - timedelta(days=100)).date()  # before any send of the sandbox
    end = (now - timedelta(days=14)).date()
    start_at = datetime.combine(start, datetime.min.time(), UTC)
    end_at = datetime.combine(end, datetime.min.time(), UTC)
    # A normal run from `end` (UTC midnight): the sends started since then, and a cursor.
    (normal,) = warehouse.run("inboxfirst", inboxfirst={"start_date": end.isoformat()}).sources
    assert normal.status == "loaded", normal.message
    state_before = inboxfirst_state(warehouse)
    assert set(state_before[0]["send_cursors"]) == {"1", "2", "3"}
    before = loaded_rows(warehouse)
    assert 0 < len(before["campaigns"]) < expected_campaigns(sandbox)["count"]

    seq = sandbox.requests("inboxfirst")[-1]["seq"]
    window = {"start_date": start.isoformat(), "end_date": end.isoformat()}
    (source,) = warehouse.run("inboxfirst", inboxfirst=window).sources
    assert source.status == "loaded", source.message

    # The normal run's sends plus the window's are every send: equal to the truth.
    assert_equals_truth(sandbox, warehouse)
    after = loaded_rows(warehouse)
    window_ids = {i for i, v in after["campaigns"].items() if start_at <= v[0] < end_at}
    assert window_ids and window_ids.isdisjoint(before["campaigns"])
    assert source.rows["campaigns"] == len(window_ids)
    assert {"campaigns", "link_stats"} <= set(source.rows) and not {"mailing_lists", "campaign_list"} & set(source.rows)
    # The normal run's rows (sends started since `end`: outside the window) untouched.
    for table in after:
        assert {k: after[table][k] for k in before[table]} == before[table], table

    # Requests: each list once with the window's bounds, then details and link
    # stats of exactly the window's sends (end exclusive: none started at/after `end`).
    log = sandbox.requests("inboxfirst", since=seq)
    lists = [r["query"] for r in log if r["path"].endswith("/campaigns")]
    assert len(lists) == 3
    assert {(q["started_at__start"], q["started_at__end"]) for q in lists} == {(f"{start}T00:00:00Z", f"{end}T00:00:00Z")}
    assert detail_ids(log) == window_ids
    link_ids = {int(r["path"].split("/")[-2]) for r in log if r["path"].endswith("/link_stats")}
    assert link_ids == window_ids
    links = dict(
        warehouse.query(
            "select c.id, count(l.link_id) from inboxfirst.campaigns c left join inboxfirst.link_stats l on l.campaign_id = c.id "
            "where c.dispatch__started_at >= ? and c.dispatch__started_at < ? group by c.id",
            [start_at, end_at],
        )
    )
    assert set(links) == window_ids
    assert len(log) == 3 + len(links) + sum(max(1, math.ceil(n / LINK_STATS_PAGE_SIZE)) for n in links.values())

    # The cursor is exactly as the normal run left it.
    assert inboxfirst_state(warehouse) == state_before

    # The same backfill again: same rows, same figures, no duplicates, cursor untouched.
    assert warehouse.run("inboxfirst", inboxfirst=window).sources[0].status == "loaded"
    again = loaded_rows(warehouse)
    assert {t: {k: v[:-1] for k, v in rows.items()} for t, rows in again.items()} == {
        t: {k: v[:-1] for k, v in rows.items()} for t, rows in after.items()
    }
    assert_equals_truth(sandbox, warehouse)
    assert inboxfirst_state(warehouse) == state_before


def test_backfill_on_a_fresh_pipeline_writes_no_cursor(sandbox, warehouse):
    """Backfill before any normal run: the window's sends load, and no cursor appears
    (not even an empty campaign_window), so the first normal run still starts at START_DATE."""
    now = datetime.fromisoformat(sandbox.clock()["now"])
    start, end = (now - timedelta(days=30)).date(), (now - timedelta(days=20)).date()
    (source,) = warehouse.run("inboxfirst", inboxfirst={"start_date": start.isoformat(), "end_date": end.isoformat()}).sources
    assert source.status == "loaded", source.message
    first, last = warehouse.query("select min(dispatch__started_at), max(dispatch__started_at) from inboxfirst.campaigns")[0]
    assert datetime.combine(start, datetime.min.time(), UTC) <= first <= last < datetime.combine(end, datetime.min.time(), UTC)
    # (dlt itself stores a first pipeline-state row on a fresh pipeline: without source state.)
    assert inboxfirst_state(warehouse)[0] == {}


def test_backfill_end_date_without_start_date_is_refused(sandbox, warehouse):
    from sources.inboxfirst import inboxfirst_source

    with pytest.raises(ValueError, match="inboxfirst: end_date .*needs start_date"):
        inboxfirst_source(end_date="2026-01-08")
    with pytest.raises(ValueError, match="inboxfirst: end_date .* must be after start_date"):
        inboxfirst_source(start_date="2026-01-08", end_date="2026-01-01")
    (source,) = warehouse.run("inboxfirst", inboxfirst={"end_date": "2026-01-08"}).sources
    assert source.status == "failed"
    assert "inboxfirst" in source.message and "end_date" in source.message and "start_date" in source.message
    assert sandbox.requests("inboxfirst") == []


# ------------------------------------------------------------ per-campaign errors
SKIPPED_ID = 17  # a send of every sandbox mode and clock used here


@both_sandbox_modes
@pytest.mark.parametrize("kind, path", [("404", f"campaigns/{SKIPPED_ID}"), ("400", f"campaigns/{SKIPPED_ID}/link_stats")])
def test_client_error_on_one_campaign_is_skipped_and_counted(sandbox, warehouse, kind, path):
    sandbox.add_fault(kind, api="inboxfirst", path_contains=path, rate=1.0)
    (source,) = warehouse.run("inboxfirst").sources
    assert source.status == "loaded", source.message
    assert source.requests["skipped_entities"] == 1
    (skip,) = source.requests["skipped"]
    assert skip["endpoint"].endswith(f"/ga/api/v2/{path}") and skip["status"] == int(kind)
    ids = {r[0] for r in warehouse.query("select id from inboxfirst.campaigns")}
    links = {r[0] for r in warehouse.query("select distinct campaign_id from inboxfirst.link_stats")}
    assert SKIPPED_ID not in links
    # Details skipped: the campaign (and so its links) is missing; link_stats skipped:
    # only its links are. Every other campaign loads.
    assert (SKIPPED_ID in ids) == path.endswith("/link_stats")
    assert len(ids) == expected_campaigns(sandbox)["count"] - (0 if SKIPPED_ID in ids else 1)
    assert len(links) == expected_campaigns(sandbox)["count"] - 1


def test_persistent_429_on_one_campaign_is_skipped_after_retries(sandbox, warehouse, monkeypatch):
    monkeypatch.setenv("RUNTIME__REQUEST_MAX_ATTEMPTS", "3")
    sandbox.add_fault("429", api="inboxfirst", path_contains=f"campaigns/{SKIPPED_ID}", rate=1.0, retry_after=None)
    (source,) = warehouse.run("inboxfirst").sources
    assert source.status == "loaded", source.message
    assert source.requests["skipped_entities"] == 1 and source.requests["throttled"] == 3
    asked = [r for r in sandbox.requests("inboxfirst") if r["path"].endswith(f"/campaigns/{SKIPPED_ID}")]
    assert len(asked) == 3  # every attempt dlt's client makes, then skipped
    assert warehouse.scalar("select count(*) from inboxfirst.campaigns") == expected_campaigns(sandbox)["count"] - 1


# ------------------------------------------------------------ cursor per mailing list
def lists_asked(sandbox, since_seq):
    """{mailing list id: started_at__start} of the list requests after ``since_seq``."""
    return {
        int(r["path"].split("/")[-2]): datetime.fromisoformat(r["query"]["started_at__start"].replace("Z", "+00:00"))
        for r in sandbox.requests("inboxfirst", since=since_seq)
        if r["path"].endswith("/campaigns")
    }


@both_sandbox_modes
def test_mailing_list_added_later_gets_its_history_from_start_date(sandbox, warehouse, monkeypatch):
    now = datetime.fromisoformat(sandbox.clock()["now"])
    start = (now - timedelta(days=100)).replace(microsecond=0)  # before any send of the sandbox
    monkeypatch.setenv("SOURCES__INBOXFIRST__START_DATE", start.isoformat())
    monkeypatch.setenv("SOURCES__INBOXFIRST__MAILING_LIST_IDS", "1,2")
    assert warehouse.run("inboxfirst").sources[0].status == "loaded"
    assert warehouse.query("select distinct mailing_list_id from inboxfirst.campaigns order by 1") == [(1,), (2,)]
    sandbox.advance(1)
    seq = sandbox.requests("inboxfirst")[-1]["seq"]
    monkeypatch.setenv("SOURCES__INBOXFIRST__MAILING_LIST_IDS", "1,2,3")
    (source,) = warehouse.run("inboxfirst").sources
    assert source.status == "loaded", source.message
    asked = lists_asked(sandbox, seq)
    assert asked[3] == start
    window_start = datetime.now(UTC) - timedelta(days=WINDOW_DAYS)
    assert all(abs(asked[i] - window_start) < timedelta(minutes=1) for i in (1, 2))
    assert_equals_truth(sandbox, warehouse)
    assert set(source.cursor_after) == {f"send_cursors.{i}" for i in (1, 2, 3)}


def test_single_cursor_of_earlier_versions_migrates_without_losing_a_list(sandbox, warehouse, monkeypatch):
    """A state with the old single cursor does not say which lists it covered: the
    run that finds it reads every list from START_DATE, then keeps one cursor per list."""
    now = datetime.fromisoformat(sandbox.clock()["now"])
    start = (now - timedelta(days=100)).replace(microsecond=0)
    monkeypatch.setenv("SOURCES__INBOXFIRST__START_DATE", start.isoformat())
    assert warehouse.run("inboxfirst").sources[0].status == "loaded"
    last = warehouse.scalar("select max(dispatch__started_at) from inboxfirst.campaigns")
    pipeline = make_pipeline("inboxfirst", warehouse.path)
    with pipeline.managed_state() as state:
        source_state = state["sources"]["inboxfirst"]
        del source_state["send_cursors"]
        source_state["campaign_window"] = {"last_started_at": last.isoformat()}
    seq = sandbox.requests("inboxfirst")[-1]["seq"]
    (source,) = warehouse.run("inboxfirst").sources
    assert source.status == "loaded", source.message
    assert lists_asked(sandbox, seq) == {1: start, 2: start, 3: start}
    assert_equals_truth(sandbox, warehouse)
    state = inboxfirst_state(warehouse)[0]
    assert "campaign_window" not in state
    last_by_list = warehouse.query("select mailing_list_id, max(dispatch__started_at) from inboxfirst.campaigns group by 1")
    assert {k: datetime.fromisoformat(v) for k, v in state["send_cursors"].items()} == {str(k): v for k, v in last_by_list}


@pytest.mark.parametrize("sandbox_mode", ["doc_shapes"])
def test_sends_without_stat_summary_only_still_build_staging(sandbox, warehouse, sandbox_mode):
    """Only sends answering stat_summary: null (doc) loaded: every declared stat column
    exists, typed, and NULL, and the staging model builds."""
    from sources.inboxfirst import inboxfirst_source

    null_ids = [10, 20, 30, 40]  # doc-shaped null-stats sends (id % 10 == 0) at every test clock
    source = inboxfirst_source()
    source.resources["campaigns"].pipe_data_from(dlt.resource([[{"id": i} for i in null_ids]], name="some", selected=False))
    make_pipeline("inboxfirst", warehouse.path).run(source.with_resources("campaigns"), loader_file_format="parquet")
    types = dict(
        warehouse.query(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'inboxfirst' and table_name = 'campaigns'"
        )
    )
    assert all(types[f"stat_summary__{f}"] == "BIGINT" for f in STAT_COUNTERS)
    assert warehouse.scalar("select count(*) from inboxfirst.campaigns where stat_summary__messages_sent is null") == len(null_ids)
    rows = warehouse.query(f"select messages_sent, clicks_total from ({STAGING_SQL})")
    assert rows == [(0, 0)] * len(null_ids)


def table_contents(warehouse, schema):
    """Every table of ``schema`` as sorted rows without dlt's own columns (random ids
    and load ids differ between loads; the child tables' parent links are checked
    through the parent's key by their counts)."""
    out = {}
    for (table,) in warehouse.query(
        "select table_name from information_schema.tables where table_schema = ? and table_name not like '_dlt%'", [schema]
    ):
        columns = [
            c for (c,) in warehouse.query(
                "select column_name from information_schema.columns where table_schema = ? and table_name = ? order by 1", [schema, table]
            )
            if not c.startswith("_dlt")
        ]
        select = ", ".join(f'"{c}"' for c in columns)
        out[table] = sorted(map(repr, warehouse.query(f'select {select} from {schema}."{table}"')))
    return out


def test_sends_are_read_side_by_side_and_load_the_same_rows_as_one_at_a_time(sandbox, warehouse, monkeypatch, tmp_path):
    """Details and link stats of different sends are fetched with several requests
    open at once (never more than the setting), and the tables are identical to a
    load that reads one page at a time."""
    from sources.inboxfirst.settings import MAX_CONCURRENT_REQUESTS

    delay = 0.2
    sandbox.add_fault("slow", api="inboxfirst", delay=delay, rate=1.0)
    seq = sandbox.requests("inboxfirst")[-1]["seq"] if sandbox.requests("inboxfirst") else 0
    (side_by_side,) = warehouse.run("inboxfirst").sources
    assert side_by_side.status == "loaded", side_by_side.message
    log = sandbox.requests("inboxfirst", since=seq)
    assert 1 < side_by_side.requests["max_in_flight"] <= MAX_CONCURRENT_REQUESTS
    assert 1 < peak_arrivals_within(log, delay) <= MAX_CONCURRENT_REQUESTS
    assert_equals_truth(sandbox, warehouse)

    sandbox.clear_faults()
    sandbox.add_fault("slow", api="inboxfirst", delay=0.05, rate=1.0)
    monkeypatch.setenv("SOURCES__INBOXFIRST__MAX_CONCURRENT_REQUESTS", "1")
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt_one"))
    one = type(warehouse)(tmp_path / "one_at_a_time.duckdb")
    seq = sandbox.requests("inboxfirst")[-1]["seq"]
    (one_at_a_time,) = one.run("inboxfirst").sources
    assert one_at_a_time.status == "loaded", one_at_a_time.message
    assert one_at_a_time.requests["max_in_flight"] == 1
    assert peak_arrivals_within(sandbox.requests("inboxfirst", since=seq), 0.05) == 1
    assert one_at_a_time.requests["requests"] == side_by_side.requests["requests"]
    assert one_at_a_time.rows == side_by_side.rows
    assert table_contents(one, "inboxfirst") == table_contents(warehouse, "inboxfirst")
    sandbox.clear_faults()


def test_max_concurrent_requests_outside_1_to_32_is_refused(sandbox, warehouse, monkeypatch):
    monkeypatch.setenv("SOURCES__INBOXFIRST__MAX_CONCURRENT_REQUESTS", "0")
    (source,) = warehouse.run("inboxfirst").sources
    assert source.status == "failed"
    assert "max_concurrent_requests must be an integer from 1 to 32" in source.message, source.message
