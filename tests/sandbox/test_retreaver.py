"""The Retreaver emulator, driven through plain HTTP like a client would.

Covers both hosts (api.retreaver.com under /retreaver, canary under
/retreaver_calls): auth, the Link-header pagination walked to the end against
truth(), filters and the updated_at ordering quirk, reports, advance, faults and
determinism.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
import requests

from sandbox.server import SandboxThread
from tests.conftest import TEST_NOW, TEST_SEED

# The v2 example's call fields (doc "V2 - Get recent Calls"), every one of them.
V2_FIELDS = set(
    """uuid caller caller_number_sent caller_zip caller_state caller_city caller_country dialed_call_duration
    total_duration ivr_duration hold_duration status start_time forwarded_time end_time cid afid sid dialed_number
    revenue payout postback_value network_sale_timer_fired affiliate_sale_timer_fired target_sale_timer_fired
    hung_up_by duplicate payable_duplicate receivable_duplicate callpixels_target_id system_target_id
    system_campaign_id system_affiliate_id fired_pixels_count charge_total keys_pressed repeat affiliate_repeat
    target_repeat number_repeat visitor_url company_id conversions_determined_at updated_at created_at
    billable_minutes upstream_call_uuid downstream_call_uuids target_group recording_url number converted payable
    receivable conversion_seconds tid tags fired_pixels via rescued campaign_id campaign_name number_id target_id
    affiliate_name connected profit_gross profit_net target_name time_to_call_in_seconds
    time_to_connect_in_seconds total_cost""".split()
)
V1_FIELDS = set(
    """uuid caller caller_zip caller_state caller_city caller_country dialed_call_duration total_duration status
    start_time forwarded_time end_time cid afid sid dialed_number updated_at created_at recording_url""".split()
)


@pytest.fixture(scope="module")
def sandbox_server():
    """Only the Retreaver emulator: keeps each reset cheap and this file independent."""
    with SandboxThread(seed=TEST_SEED, scale=1.0, now=TEST_NOW, apis=["retreaver"]) as server:
        yield server


class Client:
    def __init__(self, sandbox: Any):
        env = sandbox.env()
        self.api = env["SOURCES__RETREAVER__BASE_URL"]
        self.canary = env["SOURCES__RETREAVER__CALLS_BASE_URL"]
        self.auth = {"api_key": env["SOURCES__RETREAVER__API_KEY"], "company_id": env["SOURCES__RETREAVER__COMPANY_ID"]}
        self.http = requests.Session()

    def get(self, url: str, **params: Any) -> requests.Response:
        return self.http.get(url, params={**self.auth, **params}, timeout=30)

    def walk(self, url: str, **params: Any) -> tuple[list[dict[str, Any]], int]:
        """Follow rel="next" to the end; returns (unwrapped rows, pages)."""
        response = self.get(url, **params)
        rows, pages = [], 0
        while True:
            assert response.status_code == 200, response.text
            rows.extend(response.json())
            pages += 1
            nxt = response.links.get("next")
            if not nxt:
                return rows, pages
            response = self.http.get(nxt["url"], timeout=30)  # the link carries every parameter


@pytest.fixture
def rt(sandbox) -> Client:
    return Client(sandbox)


def parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def money(value: Any) -> Decimal:
    return Decimal(str(value)) if value is not None else Decimal(0)


# ------------------------------------------------------------------------------ auth


def test_auth_failures_use_the_documented_status_codes(rt):
    url = rt.canary + "/api/v2/calls.json"
    assert rt.http.get(url, timeout=10).status_code == 401  # missing key
    wrong = rt.http.get(url, params={"api_key": "woofwoofwoof"}, timeout=10)
    assert wrong.status_code == 401 and "API key" in wrong.json()["error"]
    other_company = rt.get(rt.api + "/calls.json", company_id="1")
    assert other_company.status_code == 403
    # company_id is optional for a single-company key (the doc's v2 examples omit it).
    assert rt.http.get(url, params={"api_key": rt.auth["api_key"]}, timeout=10).status_code == 200
    # Auth comes first, then the format: XML is not emulated.
    assert rt.http.get(rt.api + "/campaigns.xml", timeout=10).status_code == 401
    assert rt.get(rt.api + "/campaigns.xml").status_code == 406


# --------------------------------------------------------------------- catalogue


def test_catalogue_endpoints_match_truth(sandbox, rt):
    truth = sandbox.truth("retreaver")["retreaver"]
    for path, key in (("/campaigns.json", "campaign"), ("/affiliates.json", "affiliate"), ("/targets.json", "target"), ("/numbers.json", "number")):
        rows, pages = rt.walk(rt.api + path)
        assert [list(r) for r in rows] == [[key]] * len(rows)
        assert len(rows) == truth[key + "s"]["count"], path
        assert pages == -(-len(rows) // 25)
    campaigns, _ = rt.walk(rt.api + "/campaigns.json")
    first = campaigns[0]["campaign"]
    assert {"cid", "name", "updated_at", "created_at", "record_calls", "greeting", "timers", "menu_options"} <= set(first)
    assert rt.get(rt.api + f"/campaigns/cid/{first['cid']}.json").json() == campaigns[0]
    assert rt.get(rt.api + f"/campaigns/{first['id']}.json").json() == campaigns[0]
    affiliate = rt.walk(rt.api + "/affiliates.json")[0][0]["affiliate"]
    assert rt.get(rt.api + f"/affiliates/afid/{affiliate['afid']}.json").json()["affiliate"] == affiliate
    target = rt.walk(rt.api + "/targets.json")[0][0]["target"]
    assert rt.get(rt.api + f"/targets/{target['id']}.json").json()["target"] == target
    assert target["created_at"][-6] in "+-"  # the doc's target timestamps carry an offset
    numbers, _ = rt.walk(rt.api + "/numbers.json")
    by_cid = rt.walk(rt.api + "/numbers.json", cid=first["cid"])[0]
    assert by_cid and all(n["number"]["cid"] == first["cid"] for n in by_cid)
    assert len(by_cid) == sum(n["number"]["cid"] == first["cid"] for n in numbers)
    number = numbers[-1]["number"]
    assert rt.get(rt.api + f"/numbers/{number['id']}.json").json()["number"] == number
    assert rt.get(rt.api + "/company.json").json()["company"]["id"] == int(rt.auth["company_id"])
    assert rt.get(rt.api + "/campaigns/cid/nope.json").status_code == 404


# ------------------------------------------------------------------------- calls


def test_v2_walk_to_the_end_matches_truth(sandbox, rt):
    truth = sandbox.truth("retreaver")["retreaver"]["calls"]
    rows, pages = rt.walk(rt.canary + "/api/v2/calls.json", sort_by="created_at", order="asc", per_page=100)
    calls = [r["call"] for r in rows]
    assert pages == -(-truth["count"] // 100)
    assert len(calls) == truth["count"] == len({c["uuid"] for c in calls})
    created = [parse(c["created_at"]) for c in calls]
    assert created == sorted(created)
    assert max(parse(c["updated_at"]) for c in calls) <= parse(sandbox.clock()["now"])
    assert sum(c["converted"] for c in calls) == truth["converted"]
    assert sum(money(c["revenue"]) for c in calls) == Decimal(truth["sum_revenue"])
    assert sum(money(c["payout"]) for c in calls) == Decimal(truth["sum_payout"])
    assert sum(money(c["total_cost"]) for c in calls) == Decimal(truth["sum_cost"])
    assert max(c["updated_at"] for c in calls) == truth["max_updated_at"]
    assert sum("utm_campaign" in c["tags"] for c in calls) == truth["with_utm_campaign"]
    # Any page asked directly is the same slice of the walk (seek or offset alike).
    for per_page, page in ((30, 5), (50, 41)):
        direct = rt.get(rt.canary + "/api/v2/calls.json", sort_by="created_at", order="asc", per_page=per_page, page=page).json()
        assert [r["call"] for r in direct] == calls[(page - 1) * per_page : page * per_page]
    # Shape and types as the doc's v2 example.
    assert set(calls[0]) == V2_FIELDS
    for c in calls[:300]:
        assert isinstance(c["charge_total"], str) and isinstance(c["total_cost"], str)
        assert (c["revenue"] is not None) == c["converted"]
        assert c["revenue"] is None or isinstance(c["revenue"], float)
        assert c["created_at"].endswith("Z") and len(c["created_at"]) == 24
    tagged = [c["tags"] for c in calls if "utm_campaign" in c["tags"]]
    assert 0.75 < len(tagged) / len(calls) < 0.95
    assert 0.05 < sum("email" in c["tags"] for c in calls) / len(calls) < 0.15


def test_v1_pages_links_and_per_page_caps(rt):
    first = rt.get(rt.api + "/calls.json")
    assert first.status_code == 200
    calls = [r["call"] for r in first.json()]
    assert len(calls) == 25 and set(calls[0]) == V1_FIELDS
    assert calls[0]["created_at"] > calls[-1]["created_at"]  # default order is desc
    assert set(first.links) == {"next", "last"}  # like the doc's example on page 1
    nxt = first.links["next"]["url"]
    assert nxt.startswith("http") and "api_key=" in nxt and "company_id=" in nxt and "page=2" in nxt
    second = rt.http.get(nxt, timeout=10)
    assert set(second.links) == {"first", "prev", "next", "last"}
    assert second.json()[0]["call"]["created_at"] <= calls[-1]["created_at"]
    last = rt.http.get(first.links["last"]["url"], timeout=10)
    assert "next" not in last.links and 1 <= len(last.json()) <= 25
    assert len(rt.get(rt.api + "/calls.json", per_page=100).json()) == 100
    capped = rt.get(rt.api + "/calls.json", per_page=500)
    assert len(capped.json()) == 100 and "per_page=500" in capped.links["next"]["url"]
    assert rt.get(rt.api + "/calls.json", page=0).status_code == 400
    assert rt.get(rt.api + "/calls.json", sort_by="revenue").status_code == 400
    one = calls[3]
    assert rt.get(rt.api + f"/calls/{one['uuid']}.json").json() == {"call": one}
    v2 = rt.get(rt.canary + f"/api/v2/calls/{one['uuid']}.json").json()["call"]
    assert v2["uuid"] == one["uuid"] and v2["cid"] == one["cid"]
    assert rt.get(rt.api + "/calls/00000000-0000-4000-8000-000000000000.json").status_code == 404


def test_created_at_window_filter_with_offsets(sandbox, rt):
    by_day = sandbox.truth("retreaver")["retreaver"]["calls_by_day"]
    day = sorted(by_day)[30]
    # The same UTC day, written in -05:00: start inclusive, end exclusive.
    start = datetime.fromisoformat(day).replace(tzinfo=UTC).astimezone(timezone(timedelta(hours=-5)))
    end = start + timedelta(days=1)
    rows, _ = rt.walk(rt.canary + "/api/v2/calls.json", created_at_start=start.isoformat(), created_at_end=end.isoformat(), per_page=100)
    assert len(rows) == by_day[day]["count"]
    assert all(c["call"]["created_at"].startswith(day) for c in rows)
    assert sum(money(c["call"]["revenue"]) for c in rows) == Decimal(by_day[day]["revenue"])
    edge = rows[5]["call"]["created_at"]
    included = rt.get(rt.canary + "/api/v2/calls.json", created_at_start=edge, created_at_end=edge[:10] + "T23:59:59.999Z", order="asc")
    assert included.json()[0]["call"]["created_at"] == edge
    excluded = rt.get(rt.canary + "/api/v2/calls.json", created_at_start=edge[:10] + "T00:00:00Z", created_at_end=edge, per_page=100)
    assert edge not in [c["call"]["created_at"] for c in excluded.json()]
    assert rt.get(rt.canary + "/api/v2/calls.json", created_at_start="yesterday").status_code == 400


def test_updated_at_is_always_newest_first(rt):
    asc = rt.get(rt.canary + "/api/v2/calls.json", sort_by="updated_at", order="asc", per_page=100).json()
    desc = rt.get(rt.canary + "/api/v2/calls.json", sort_by="updated_at", order="desc", per_page=100).json()
    assert asc == desc
    updated = [c["call"]["updated_at"] for c in asc]
    assert updated == sorted(updated, reverse=True)
    created_asc = rt.get(rt.canary + "/api/v2/calls.json", sort_by="created_at", order="asc").json()
    assert created_asc[0]["call"]["created_at"] < created_asc[-1]["call"]["created_at"]


def test_advance_adds_new_calls_and_flips_exactly_the_due_conversions(sandbox, rt):
    before_truth = sandbox.truth("retreaver")["retreaver"]
    old_now = parse(sandbox.clock()["now"])
    # Every call that could still convert was created in the last ~3 days.
    window = {"created_at_start": (old_now - timedelta(days=4)).isoformat(), "per_page": 100, "order": "asc"}
    before = {r["call"]["uuid"]: r["call"] for r in rt.walk(rt.canary + "/api/v2/calls.json", **window)[0]}
    sandbox.advance(1)
    after_truth = sandbox.truth("retreaver")["retreaver"]
    new_now = parse(sandbox.clock()["now"])
    # Walk newest-updated first until we reach what was already there before.
    changed = []
    response = rt.get(rt.canary + "/api/v2/calls.json", sort_by="updated_at", per_page=100)
    while True:
        page = [r["call"] for r in response.json()]
        fresh = [c for c in page if parse(c["updated_at"]) > old_now]
        changed.extend(fresh)
        if len(fresh) < len(page) or "next" not in response.links:
            break
        response = rt.http.get(response.links["next"]["url"], timeout=30)
    flipped = [c for c in changed if c["uuid"] in before]
    new = [c for c in changed if c["uuid"] not in before]
    assert flipped and new
    assert all(c["converted"] and not before[c["uuid"]]["converted"] for c in flipped)
    assert all(old_now < parse(c["updated_at"]) <= new_now for c in changed)
    assert len(new) == after_truth["calls"]["count"] - before_truth["calls"]["count"]
    assert len(flipped) + sum(c["converted"] for c in new) == after_truth["calls"]["converted"] - before_truth["calls"]["converted"]
    gained = sum(money(c["revenue"]) for c in changed)
    assert gained == Decimal(after_truth["calls"]["sum_revenue"]) - Decimal(before_truth["calls"]["sum_revenue"])
    # Nothing else changed: the rest of the window is byte-identical.
    again = {r["call"]["uuid"]: r["call"] for r in rt.walk(rt.canary + "/api/v2/calls.json", **window)[0]}
    changed_ids = {c["uuid"] for c in changed}
    assert {u: c for u, c in again.items() if u not in changed_ids} == {u: c for u, c in before.items() if u not in changed_ids}
    # Days long past keep their counts.
    old_days = sorted(before_truth["calls_by_day"])[:50]
    assert {d: after_truth["calls_by_day"][d] for d in old_days} == {d: before_truth["calls_by_day"][d] for d in old_days}


# ----------------------------------------------------------------------- reports


def report(rt: Client, **params: Any) -> requests.Response:
    return rt.get(rt.api + "/api/v1/reports.json", domain="calls", **params)


def test_daily_and_campaign_reports_add_up_to_the_calls(sandbox, rt):
    truth = sandbox.truth("retreaver")["retreaver"]
    days = sorted(truth["calls_by_day"])
    end = (datetime.fromisoformat(days[-1]) + timedelta(days=1)).date().isoformat()
    body = report(rt, facet="daily", created_at_start=days[0], created_at_end=end, per_page=100).json()
    assert len(body["data"]) == truth["report_daily"]["count"] == len(days)
    # Like the doc's examples, count/count_total count calls, not rows.
    assert body["count"] == body["count_total"] == truth["calls"]["count"]
    for row in body["data"]:
        day = truth["calls_by_day"][row["id"]]
        assert row["facet_name"] == row["id"]
        assert (row["total_calls"], row["converted_count"]) == (day["count"], day["converted"])
        assert money(row["revenue"]) == Decimal(day["revenue"]) and money(row["payout"]) == Decimal(day["payout"])
    assert sum(r["total_calls"] for r in body["data"]) == truth["calls"]["count"]
    assert sum(money(r["revenue"]) for r in body["data"]) == Decimal(truth["report_daily"]["sum_revenue"])
    paged = report(rt, facet="daily", created_at_start=days[0], created_at_end=end, page=3).json()
    assert len(paged["data"]) == min(25, len(days) - 50) and paged["data"][0]["id"] == days[50]
    assert paged["count"] == sum(r["total_calls"] for r in paged["data"])
    assert paged["count_total"] == truth["calls"]["count"]
    # One campaign report per day, as a pipeline would read it.
    rows, calls, revenue = 0, 0, Decimal(0)
    for day in days:
        nxt = (datetime.fromisoformat(day) + timedelta(days=1)).date().isoformat()
        data = report(rt, facet="campaign", created_at_start=day, created_at_end=nxt, per_page=100).json()["data"]
        rows += len(data)
        calls += sum(r["total_calls"] for r in data)
        revenue += sum(money(r["revenue"]) for r in data)
    assert rows == truth["report_campaign_daily"]["count"]
    assert calls == truth["report_campaign_daily"]["total_calls"]
    assert revenue == Decimal(truth["report_campaign_daily"]["sum_revenue"])


def test_report_parameters_are_validated(rt):
    assert report(rt, facet="daily", created_at_start="2024-01-01", created_at_end="2026-01-01").status_code == 400
    assert report(rt, facet="daily", created_at_start="2024-01-01", created_at_end="2025-12-31").status_code == 200
    assert report(rt, facet="daily", created_at_start="2024-01-02", created_at_end="2024-01-01").status_code == 400
    assert report(rt, facet="daily", created_at_start="2024-01-01").status_code == 400
    assert report(rt, facet="weekly", created_at_start="2024-01-01", created_at_end="2024-02-01").status_code == 400
    assert rt.get(rt.api + "/api/v1/reports.json", facet="daily", created_at_start="2024-01-01", created_at_end="2024-02-01").status_code == 400


def test_tag_value_report_only_for_indexed_tags(sandbox, rt):
    truth = sandbox.truth("retreaver")["retreaver"]
    days = sorted(truth["calls_by_day"])
    end = (datetime.fromisoformat(days[0]) + timedelta(days=700)).date().isoformat()
    params = {"facet": "tag_value", "created_at_start": days[0], "created_at_end": end}
    keys = report(rt, **params).json()["data"]
    assert {r["id"] for r in keys} == {"utm_campaign", "utm_source"}
    assert next(r for r in keys if r["id"] == "utm_campaign")["total_calls"] == truth["calls"]["with_utm_campaign"]
    values = report(rt, tag_value_key="utm_campaign", per_page=1000, **params).json()
    assert sum(r["total_calls"] for r in values["data"]) == truth["calls"]["with_utm_campaign"]
    assert report(rt, tag_value_key="unindexed_tag_value", **params).json() == {"count": 0, "count_total": 0, "data": []}


# ------------------------------------------------------------------- doc shapes


@pytest.mark.parametrize("sandbox_mode", ["doc_shapes"])
def test_doc_shapes_answer_like_the_doc_examples(sandbox, rt):
    """v2 pages without Link, campaigns/affiliates without "id", system_affiliate_id
    null: the data stays the same, only the shapes change."""
    truth = sandbox.truth("retreaver")["retreaver"]
    url = rt.canary + "/api/v2/calls.json"
    first = rt.get(url, sort_by="created_at", order="asc", per_page=100)
    assert first.status_code == 200 and "Link" not in first.headers and len(first.json()) == 100
    calls, page = [], 1
    while True:
        rows = rt.get(url, sort_by="created_at", order="asc", per_page=100, page=page).json()
        if not rows:
            break
        calls += [r["call"] for r in rows]
        page += 1
    assert len(calls) == truth["calls"]["count"] == len({c["uuid"] for c in calls})
    assert set(calls[0]) == V2_FIELDS
    assert all(c["system_affiliate_id"] is None for c in calls)
    assert any(c["afid"] for c in calls)  # the affiliates are still there (data unchanged)
    # The v1 indexes keep their documented Link header.
    assert rt.get(rt.api + "/calls.json", per_page=25).links["next"]
    campaigns = rt.get(rt.api + "/campaigns.json").json()
    assert "id" not in campaigns[0]["campaign"] and campaigns[0]["campaign"]["cid"]
    affiliates = rt.get(rt.api + "/affiliates.json").json()
    assert set(affiliates[0]["affiliate"]) == {"afid", "first_name", "last_name", "company_name", "updated_at", "created_at"}
    assert "id" in rt.get(rt.api + "/targets.json").json()[0]["target"]  # the doc's targets show it


# ------------------------------------------------------------- faults, determinism


def test_429_and_truncate_faults_are_seen(sandbox, rt):
    sandbox.add_fault("429", api="retreaver", count=1, retry_after=7)
    limited = rt.get(rt.canary + "/api/v2/calls.json")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"
    assert rt.get(rt.canary + "/api/v2/calls.json").status_code == 200
    sandbox.add_fault("truncate", api="retreaver", count=1)
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.ConnectionError)):
        rt.get(rt.api + "/calls.json").json()
    logged = sandbox.requests("retreaver")
    assert [e["fault"] for e in logged if e["fault"]] == ["429", "truncate"]
    assert all(e["query"]["api_key"] == "***" for e in logged)


def test_same_seed_same_bytes(sandbox, rt):
    def snapshot() -> list[bytes]:
        return [
            rt.get(rt.canary + "/api/v2/calls.json", page=7, order="asc").content,
            rt.get(rt.api + "/calls.json", sort_by="updated_at", page=2).content,
            rt.get(rt.api + "/campaigns.json").content,
        ]

    first = snapshot()
    sandbox.advance(0.5)
    assert snapshot()[1] != first[1]
    sandbox.reset()
    assert snapshot() == first


def test_a_store_of_a_world_made_before_is_a_copy_of_its_calls_and_its_own():
    from sandbox.retreaver import models
    from sandbox.world import World

    now = TEST_NOW.replace(tzinfo=UTC)
    key = (TEST_SEED + 1, 0.1, now)
    models._TEMPLATES.pop(key, None)
    generated = models.RetreaverStore(World(seed=key[0], scale=key[1], now=now))
    assert key in models._TEMPLATES
    copied = models.RetreaverStore(World(seed=key[0], scale=key[1], now=now))
    calls = list(generated.db.iterdump())
    assert list(copied.db.iterdump()) == calls and copied.generated_through == generated.generated_through
    # A copy's later changes are its own: the next store of the world starts as generated.
    copied.advance(now, now + timedelta(days=2))
    assert list(copied.db.iterdump()) != calls
    again = models.RetreaverStore(World(seed=key[0], scale=key[1], now=now))
    assert list(again.db.iterdump()) == calls
    for store in (generated, copied, again):
        store.close()
