"""The ListenLoop emulator, driven over plain HTTP: contract reads (paged array,
one campaign), documented create/edit, auth, growth on advance, determinism."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal

import pytest
import requests

from tests.conftest import sandbox_server_of

sandbox_server = sandbox_server_of("listenloop")

DOC_FIELDS = [  # every key of the doc's Create response, in order
    "id", "name", "organization_id", "user_defined_status", "archived_at", "worthy_of_dsp",
    "worthy_of_dsp_description", "destination_url", "accounts_count", "accounts_with_impression_count",
    "last_user_stopped_at", "start_date", "end_date", "daily_budget", "bw_lifetime_budget",
    "user_defined_aggressiveness", "user_defined_cpm", "created_at", "updated_at",
    "frequency_cap_impressions", "frequency_cap_duration", "billing_type", "worthy_of_wpe",
    "worthy_of_wpe_description", "wizard_type", "ctc_enabled", "targeting_strategy", "bidding_strategy",
    "pacing", "ecpc_target", "max_bid", "clicks_count", "impressions_count", "turned_on_accounts_count",
    "ctr", "page_views_count", "personalization_c_page_views_count", "conversion_c_page_views_count",
    "conversion_rate", "salesforce_lists", "organization", "job_titles", "personalization_criteria",
    "conversion_criteria", "inventories", "geo_optimizations", "day_partings", "device_types", "carriers",
    "targetable_accounts_count",
]  # fmt: skip
COUNTERS = ("impressions_count", "clicks_count", "page_views_count", "conversion_c_page_views_count")
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}-0[45]:00$")
MONEY = re.compile(r"^\d+\.\d+$")


class Client:
    def __init__(self, sandbox, token: str | None = None, email: str | None = None):
        env = sandbox.env()
        self.base = env["SOURCES__LISTENLOOP__BASE_URL"]
        self.headers = {
            "X-User-Token": env["SOURCES__LISTENLOOP__API_KEY"] if token is None else token,
            "X-User-Email": env["SOURCES__LISTENLOOP__EMAIL"] if email is None else email,
        }

    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        return requests.request(method, self.base + path, headers=self.headers, timeout=10, **kwargs)

    def get(self, path: str, **params) -> requests.Response:
        return self.call("GET", path, params=params)

    def walk(self, per_page: int | None = None) -> tuple[list[dict], int]:
        """Every campaign, page by page until a short page; returns (rows, pages)."""
        rows: list[dict] = []
        page = 1
        while True:
            params = {"page": page} | ({"per_page": per_page} if per_page else {})
            response = self.get("/campaigns", **params)
            assert response.status_code == 200, response.text
            batch = response.json()
            assert isinstance(batch, list)
            rows += batch
            if len(batch) < min(per_page or 25, 100):
                return rows, page
            page += 1


@pytest.fixture
def client(sandbox) -> Client:
    return Client(sandbox)


def totals(rows: list[dict]) -> dict:
    sums = {f"sum_{name}": sum(r[name] or 0 for r in rows) for name in COUNTERS}
    spend = Decimal(0)
    for r in rows:
        if r["bidding_strategy"] == "CPC":
            spend += (r["clicks_count"] or 0) * Decimal(r["ecpc_target"])
        else:
            spend += (r["impressions_count"] or 0) * Decimal(r["user_defined_cpm"]) / 1000
    return {"count": len(rows), **sums, "estimated_spend": spend}


def truth(sandbox) -> dict:
    return sandbox.truth("listenloop")["listenloop"]["campaigns"]


@pytest.mark.parametrize("per_page, page_size", [(None, 25), (100, 100), (250, 100)])
def test_walking_every_page_matches_truth(sandbox, client, per_page, page_size):
    rows, pages = client.walk(per_page)
    expected = truth(sandbox)
    assert pages == expected["count"] // page_size + 1
    ids = [r["id"] for r in rows]
    assert ids == sorted(set(ids))  # ordered by id, no duplicates across pages
    got = totals(rows)
    assert Decimal(expected.pop("estimated_spend")) == got.pop("estimated_spend")
    assert got == expected


def test_campaign_objects_are_shaped_like_the_doc(client):
    rows, _ = client.walk(100)
    assert len(rows) == 80
    for row in rows:
        assert list(row) == DOC_FIELDS
        for name in ("daily_budget", "bw_lifetime_budget", "user_defined_cpm", "ecpc_target", "max_bid"):
            assert MONEY.match(row[name]), (name, row[name])
        assert TIMESTAMP.match(row["created_at"]) and TIMESTAMP.match(row["updated_at"])
        assert datetime.fromisoformat(row["updated_at"]) >= datetime.fromisoformat(row["created_at"])
        assert [d["day"] for d in row["day_partings"]][:2] == ["sunday", "monday"]
        assert row["organization"] == {"id": 1, "campaigns": [r["id"] for r in rows]}
        assert row["bidding_strategy"] in ("CPM", "CPM_PACED", "CPM_OPTIMIZED", "CPC")
        if row["impressions_count"] is None:
            assert row["ctr"] is None and row["clicks_count"] is None and row["conversion_rate"] is None
        else:
            assert row["clicks_count"] <= row["impressions_count"]
            assert row["ctr"] == pytest.approx(row["clicks_count"] / row["impressions_count"], abs=1e-6)
    # The world has every case the doc hints at.
    assert any(r["impressions_count"] is None and r["worthy_of_dsp_description"] == "No destination Url" for r in rows)
    assert {r["user_defined_status"] for r in rows} >= {"active", "paused"}
    assert any(r["bidding_strategy"] == "CPC" for r in rows)
    # Offsets follow New York daylight saving time for the date.
    assert {r["created_at"][-6:] for r in rows} <= {"-04:00", "-05:00"}


def test_pages_beyond_the_end_are_empty_and_parameters_are_validated(client):
    assert client.get("/campaigns", page=99).json() == []
    assert client.get("/campaigns", page=0).status_code == 400
    assert client.get("/campaigns", per_page="many").status_code == 400
    assert len(client.get("/campaigns", per_page=500).json()) == 80  # capped to 100, one page
    assert len(client.get("/campaigns", per_page=7, page=2).json()) == 7


@pytest.mark.parametrize("sandbox_mode", ["doc_shapes"])
def test_doc_shapes_cap_per_page_at_50_with_the_same_campaigns(sandbox, client):
    # The index endpoint is undocumented: a real server may cap lower than the contract.
    assert len(client.get("/campaigns", per_page=100).json()) == 50
    assert len(client.get("/campaigns", per_page=100, page=2).json()) == 30
    rows = client.get("/campaigns", per_page=50).json() + client.get("/campaigns", per_page=50, page=2).json()
    assert all(list(r) == DOC_FIELDS for r in rows)
    assert any(r["start_date"] is None for r in rows) and any(r["impressions_count"] is None for r in rows)
    assert totals(rows)["count"] == truth(sandbox)["count"]


def test_one_campaign_and_404(client):
    first = client.get("/campaigns").json()[0]
    response = client.get(f"/campaigns/{first['id']}")
    assert response.status_code == 200
    assert response.json() == first
    assert client.get("/campaigns/999999").status_code == 404
    assert client.get("/campaigns/abc").status_code == 404


@pytest.mark.parametrize(
    "token, email",
    [("", None), (None, ""), ("wrong-token", None), (None, "someone@else.test"), ("", "")],
)
def test_auth_needs_both_headers_to_match(sandbox, token, email):
    response = Client(sandbox, token, email).get("/campaigns")
    assert response.status_code == 401
    assert response.json() == {"error": "You need to sign in or sign up before continuing."}


def test_missing_headers_are_401_on_every_route(client):
    for method, path in [("GET", "/campaigns"), ("GET", "/campaigns/5001"), ("POST", "/campaigns"), ("PUT", "/campaigns/5001")]:
        assert requests.request(method, client.base + path, timeout=10).status_code == 401


def test_create_then_edit_round_trip(sandbox, client):
    before = truth(sandbox)
    created = client.call("POST", "/campaigns", json={"campaign": {"name": "My Awesome Campaign"}})
    assert created.status_code == 201, created.text
    body = created.json()
    assert list(body) == DOC_FIELDS
    # The doc's Create example: defaults, nulls, "No destination Url".
    assert body["name"] == "My Awesome Campaign"
    assert body["user_defined_status"] == "active"
    assert (body["daily_budget"], body["bw_lifetime_budget"], body["user_defined_cpm"]) == ("15.0", "10000.0", "25.0")
    assert (body["ecpc_target"], body["max_bid"], body["bidding_strategy"], body["pacing"]) == ("0.02", "0.02", "CPM", "daily")
    assert body["worthy_of_dsp"] is False and body["worthy_of_dsp_description"] == "No destination Url"
    assert body["impressions_count"] is None and body["ctr"] is None
    assert body["created_at"] == body["updated_at"]
    assert body["id"] > 5080 and body["id"] in body["organization"]["campaigns"]
    assert len(body["day_partings"]) == 7

    # The doc's Edit example: "listenloop.com" becomes "http://listenloop.com".
    sandbox.advance(0.5)
    edited = client.call("PUT", f"/campaigns/{body['id']}", json={"campaign": {"destination_url": "listenloop.com"}})
    assert edited.status_code == 200
    edited_body = edited.json()
    assert edited_body["destination_url"] == "http://listenloop.com"
    assert edited_body["worthy_of_dsp"] is True and edited_body["worthy_of_dsp_description"] == ""
    assert edited_body["updated_at"] > edited_body["created_at"]
    patched = client.call("PATCH", f"/campaigns/{body['id']}", json={"campaign": {"daily_budget": 42.5, "bidding_strategy": "CPC"}})
    assert (patched.json()["daily_budget"], patched.json()["bidding_strategy"]) == ("42.5", "CPC")

    # The overlay is what reads serve from now on.
    assert client.get(f"/campaigns/{body['id']}").json()["daily_budget"] == "42.5"
    rows, _ = client.walk(100)
    assert rows[-1]["id"] == body["id"]
    after = truth(sandbox)
    assert after["count"] == before["count"] + 1


def test_create_and_edit_validation(client):
    assert client.call("POST", "/campaigns", json={"name": "no wrapper"}).status_code == 400
    assert client.call("POST", "/campaigns", json={"campaign": {"daily_budget": "15.0"}}).json() == {"errors": {"name": ["can't be blank"]}}
    bad = client.call("POST", "/campaigns", json={"campaign": {"name": "x", "bidding_strategy": "CPA", "daily_budget": "lots"}})
    assert bad.status_code == 422
    assert set(bad.json()["errors"]) == {"bidding_strategy", "daily_budget"}
    assert client.call("PUT", "/campaigns/999999", json={"campaign": {"name": "x"}}).status_code == 404
    assert client.call("PUT", "/campaigns/5001", json={"campaign": {"user_defined_status": "deleted"}}).status_code == 422
    # Unknown attributes are ignored (Rails strong parameters).
    assert client.call("PUT", "/campaigns/5001", json={"campaign": {"colour": "red"}}).status_code == 200


def test_advance_grows_counters_and_paused_ones_stand_still(sandbox, client):
    before = {r["id"]: r for r in client.walk(100)[0]}
    truth_before = truth(sandbox)
    sandbox.advance(1)
    after = {r["id"]: r for r in client.walk(100)[0]}
    assert set(after) == set(before)  # the catalogue creates every campaign in the first 30 days
    grew = 0
    for cid, old in before.items():
        new = after[cid]
        for name in COUNTERS:
            if old[name] is not None:
                assert new[name] >= old[name], (cid, name)
        if old["user_defined_status"] != "active":
            # Paused or archived: counters and updated_at do not move.
            assert all(new[name] == old[name] for name in COUNTERS)
            assert new["updated_at"] == old["updated_at"]
        elif old["impressions_count"] is not None and new["user_defined_status"] == "active":
            assert new["impressions_count"] > old["impressions_count"]
            assert new["updated_at"] > old["updated_at"]
            grew += 1
        # Nothing but counters, derived rates, status and updated_at changes.
        static = {k for k in DOC_FIELDS} - set(COUNTERS) - {
            "personalization_c_page_views_count", "accounts_with_impression_count", "ctr", "conversion_rate",
            "updated_at", "user_defined_status", "archived_at", "last_user_stopped_at",
        }  # fmt: skip
        assert {k: new[k] for k in static} == {k: old[k] for k in static}
    assert grew > 50
    truth_after = truth(sandbox)
    assert truth_after["sum_impressions_count"] > truth_before["sum_impressions_count"]
    assert totals(list(after.values()))["sum_clicks_count"] == truth_after["sum_clicks_count"]


def test_advance_in_steps_equals_one_jump(sandbox, client):
    sandbox.advance(0.25)
    sandbox.advance(0.75)
    stepped = client.walk(100)[0]
    sandbox.reset()
    sandbox.advance(1)
    assert client.walk(100)[0] == stepped


def test_pausing_through_the_api_freezes_counters(sandbox, client):
    target = next(r for r in client.walk(100)[0] if r["impressions_count"] and r["user_defined_status"] == "active")
    paused = client.call("PUT", f"/campaigns/{target['id']}", json={"campaign": {"user_defined_status": "paused"}}).json()
    assert paused["user_defined_status"] == "paused" and paused["last_user_stopped_at"]
    sandbox.advance(2)
    frozen = client.get(f"/campaigns/{target['id']}").json()
    assert frozen["impressions_count"] == paused["impressions_count"]
    client.call("PUT", f"/campaigns/{target['id']}", json={"campaign": {"user_defined_status": "active"}})
    sandbox.advance(1)
    resumed = client.get(f"/campaigns/{target['id']}").json()
    # Resumes from where it stopped: no jump for the two paused days.
    assert frozen["impressions_count"] < resumed["impressions_count"] < frozen["impressions_count"] * 2


def test_same_seed_same_responses(sandbox, client):
    first = client.get("/campaigns", per_page=100).content
    first_truth = truth(sandbox)
    sandbox.reset()
    assert client.get("/campaigns", per_page=100).content == first
    assert truth(sandbox) == first_truth
    sandbox.reset(seed=8)
    assert client.get("/campaigns", per_page=100).content != first


def test_injected_429_is_seen_then_the_page_is_served(sandbox, client):
    sandbox.add_fault("429", api="listenloop", count=1, retry_after=3)
    throttled = client.get("/campaigns")
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "3"
    assert client.get("/campaigns").status_code == 200
    log = sandbox.requests("listenloop")
    assert [e["fault"] for e in log] == ["429", None]
    assert all(e["headers"].get("x-user-token") == "***" for e in log)
