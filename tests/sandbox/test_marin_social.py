"""Marin Social emulator, driven through plain HTTP.

Vendor doc: /work/shared/api-docs/marin-social.txt; contract: /work/shared/api-docs/README.md.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests

from sandbox.marin_social.models import TWITTER_ACCOUNT, TWITTER_CAMPAIGNS, TWITTER_PLAN_ID
from sandbox.world import World
from tests.conftest import TEST_NOW, TEST_SEED, both_sandbox_modes, sandbox_server_of

sandbox_server = sandbox_server_of("marin_social")

API = "marin_social"
CONVERSIONS = ("leadgen.other", "app_custom_event.fb_mobile_purchase", "mobile_app_install")
ACCOUNT_KEYS = {"id", "network_id", "name", "currency", "timezone", "country", "active", "src"}
# The doc's Twitter account example: no currency, no country, funding_instruments.
TW_ACCOUNT_KEYS = {"id", "network_id", "name", "timezone", "funding_instruments", "active", "src"}
TW_CAMPAIGN_KEYS = {
    "client_id", "daily_budget", "url_reporting", "src", "lifetime_budget", "archived", "id", "name", "start_date",
    "campaign_naming", "ads_naming", "deleted", "account_id", "funding_instrument_id", "status",
}  # fmt: skip
TW_CAMPAIGN_IDS = {c[0] for c in TWITTER_CAMPAIGNS}
PLAN_KEYS = {
    "id", "margin_type", "advertiser_id", "deleted", "general_objective", "archived", "name", "account_network_id",
    "ads_naming", "margin_value", "io_number", "campaign_naming", "account_id", "autopause_value",
    "business_manager_id", "src", "url_reporting", "url_connection",
}  # fmt: skip
CAMPAIGN_KEYS = {
    "status", "account_id", "deleted", "campaign_naming", "start_date", "ads_naming", "budget_type", "url_reporting",
    "daily_budget", "client_id", "budget", "name", "id", "archived", "src",
}  # fmt: skip
ADSET_KEYS = {
    "id", "daily_budget", "name", "operation_status", "status", "bid", "promoted_object", "adset_billing_event",
    "adset_optimization_goal", "computed_status",
}  # fmt: skip
AD_KEYS = {
    "id", "deleted", "type", "target", "placement", "name", "status", "synchro_status", "bid", "adset_billing_event",
    "adset_optimization_goal", "adset_bid_strategy", "url", "src",
}  # fmt: skip
STATS_KEYS = {
    "ctr", "ctrLinks", "convRate", "convRateLinks", "cpc", "cpm", "cpa", "income", "roi", "main_metrics",
    "other_metrics", "impression", "click", "spent",
}  # fmt: skip


class Marin:
    """A tiny client: every call carries the ``key`` query parameter.

    No keep-alive session on purpose: the sandbox server writes headers and body
    separately, and on a reused connection Nagle + delayed ACK cost ~40 ms a request.
    """

    def __init__(self, base: str, key: str) -> None:
        self.base, self.key = base, key
        self.http = requests

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.http.get(self.base + path, params={"key": self.key, **params}, timeout=30)

    def ok(self, path: str, **params: Any) -> Any:
        response = self.get(path, **params)
        assert response.status_code == 200, response.text
        return response.json(parse_float=Decimal)

    def walk(self, path: str, **params: Any) -> tuple[list[dict[str, Any]], int]:
        """Every page, each asked for with ``params`` and ``page`` = 1, 2, ... (the
        doc's ``range.next`` drops the filters); checks ``range`` on the way and
        returns the rows and the page count."""
        rows: list[dict[str, Any]] = []
        page = 1
        while True:
            body = self.ok(path, **params, page=page)
            rows += body["data"]
            r = body["range"]
            if page >= r["nb_pages"]:
                assert r["next"] is None and len(rows) == r["total"]
                return rows, page
            # Doc examples: only limit, key and page, never the query's other parameters.
            assert r["next"] == f"{self.base}{path}?limit={r['limit']}&key={self.key}&page={page + 1}"
            page += 1


@pytest.fixture
def ms(sandbox) -> Marin:
    env = sandbox.env()
    assert env["SOURCES__MARIN_SOCIAL__BASE_URL"].endswith("/marin_social")
    return Marin(env["SOURCES__MARIN_SOCIAL__BASE_URL"], env["SOURCES__MARIN_SOCIAL__API_KEY"])


def world() -> World:
    return World(seed=TEST_SEED, scale=1.0, now=TEST_NOW)


def now_of(sandbox) -> datetime:
    return datetime.fromisoformat(sandbox.clock()["now"])


def midnight(tz: str, day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(tz))


def ts(moment: datetime) -> int:
    return int(moment.timestamp())


def local_today(tz: str, now: datetime) -> date:
    """The account's latest started day (its midnight strictly before now)."""
    today = now.astimezone(ZoneInfo(tz)).date()
    return today - timedelta(days=1) if midnight(tz, today) >= now else today


def totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Sums of a list of statistics rows: figures and every main metric."""
    out: dict[str, Any] = {"impression": 0, "click": 0, "spent": Decimal(0), "income": Decimal(0)}
    for row in rows:
        for k in ("impression", "click", "spent", "income"):
            out[k] += row[k]
        for m in row["main_metrics"]:
            out[m["name"] + ".number"] = out.get(m["name"] + ".number", 0) + m["number"]
            out[m["name"] + ".amount"] = out.get(m["name"] + ".amount", Decimal(0)) + m["amount"]
    return out


def by_date(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[row["date"]].append(row)
    return {d: totals(g) for d, g in groups.items()}


def plans_by_account(ms: Marin) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for plan in ms.ok("/clients")["data"]:
        out[plan["account_id"]].append(plan)
    return out


# ------------------------------------------------------------------------- auth
def test_missing_or_wrong_key_is_403_with_a_message_before_anything_else(ms):
    for params in ({}, {"key": "wrong"}, {"key": ""}):
        for path in ("/accounts", "/clients/901/statistics", "/no/such/route"):
            response = requests.get(ms.base + path, params=params, timeout=10)
            assert response.status_code == 403, (path, params)
            assert response.json() == {"message": "Access denied"}
    missing = ms.get("/no/such/route")
    assert missing.status_code == 404 and "message" in missing.json()


# -------------------------------------------------------------------- dimensions
@both_sandbox_modes
def test_accounts_and_advertisers(ms, sandbox, sandbox_mode):
    truth = sandbox.truth(API)[API]
    accounts = ms.ok("/accounts")
    assert accounts["range"] == {"total": 5, "limit": 100, "nb_pages": 1, "page": 1, "results": 5, "next": None}
    assert [a["id"] for a in accounts["data"]] == [a.id for a in world().accounts] + [TWITTER_ACCOUNT.id]
    assert len(accounts["data"]) == truth["accounts"]["count"]
    for account in accounts["data"]:
        if account["src"] == "tw":  # the doc's Twitter example; default mode: its missing keys as null
            assert set(account) == (TW_ACCOUNT_KEYS if sandbox_mode == "doc_shapes" else TW_ACCOUNT_KEYS | {"currency", "country"})
            assert account.get("currency") is None and account["funding_instruments"]
        else:
            assert set(account) == ACCOUNT_KEYS
        assert ms.ok(f"/accounts/{account['id']}") == {"data": account}
    fb = [a for a in accounts["data"] if a["src"] == "fb"]
    assert {(a["currency"], a["timezone"]) for a in fb} == {(a.currency, a.timezone) for a in world().accounts}
    assert ms.get("/accounts/act_9").status_code == 404
    assert "message" in ms.get("/accounts/act_9").json()

    advertisers = ms.ok("/advertisers")["data"]
    assert len(advertisers) == truth["advertisers"]["count"] >= 3
    for advertiser in advertisers:
        assert set(advertiser) == {"id", "name", "currency", "reporting_week"}
        assert ms.ok(f"/advertisers/{advertiser['id']}") == advertiser  # bare object, as in the doc
    assert ms.get("/advertisers/999").status_code == 404


def test_media_plans_by_id_and_io_number(ms, sandbox):
    plans = ms.ok("/clients")["data"]
    assert len(plans) == sandbox.truth(API)[API]["media_plans"]["count"] == 13
    assert {p["id"] for p in plans} == {c.media_plan_id for c in world().marin_campaigns} | {TWITTER_PLAN_ID}
    advertisers = {a["id"] for a in ms.ok("/advertisers")["data"]}
    for plan in plans:
        assert set(plan) == PLAN_KEYS
        assert plan["advertiser_id"] in advertisers
        assert ms.ok(f"/clients/{plan['id']}") == {"data": plan}
        assert ms.ok(f"/clients/{plan['io_number']}") == {"data": plan}
    assert {k: len(v) for k, v in plans_by_account(ms).items() if k != TWITTER_ACCOUNT.id} == {a.id: 3 for a in world().accounts}
    assert [p["id"] for p in plans_by_account(ms)[TWITTER_ACCOUNT.id]] == [TWITTER_PLAN_ID]
    assert ms.get("/clients/nope").status_code == 404


def test_campaigns_agency_wide_and_per_media_plan(ms, sandbox):
    catalogue = {c.id: c for c in world().marin_campaigns}
    agency, _ = ms.walk("/campaigns", limit=300)
    assert len(agency) == len(catalogue) + len(TW_CAMPAIGN_IDS) == sandbox.truth(API)[API]["campaigns"]["count"]
    for campaign in agency:
        if campaign["id"] in TW_CAMPAIGN_IDS:  # the doc's Twitter campaign example
            assert set(campaign) == TW_CAMPAIGN_KEYS and campaign["src"] == "tw" and campaign["client_id"] == TWITTER_PLAN_ID
            continue
        assert set(campaign) == CAMPAIGN_KEYS  # the agency example has no special_ad_category
        source = catalogue[campaign["id"]]
        assert (campaign["name"], campaign["account_id"], campaign["client_id"]) == (source.name, source.account_id, source.media_plan_id)
        assert datetime.strptime(campaign["start_date"], "%Y-%m-%dT%H:%M:%S%z") <= TEST_NOW
    seen = []
    for plan in ms.ok("/clients")["data"]:
        rows, _ = ms.walk(f"/clients/{plan['id']}/campaigns")
        keys = TW_CAMPAIGN_KEYS if plan["id"] == TWITTER_PLAN_ID else CAMPAIGN_KEYS | {"special_ad_category"}
        assert rows and all(r["client_id"] == plan["id"] and set(r) == keys for r in rows)
        seen += [r["id"] for r in rows]
    assert sorted(seen) == sorted([*catalogue, *TW_CAMPAIGN_IDS])
    first = agency[0]
    detail = ms.ok(f"/clients/{first['client_id']}/campaigns/{first['id']}")["data"]
    assert detail == {**first, "special_ad_category": "none"}
    other_plan = "901" if first["client_id"] != "901" else "902"
    assert ms.get(f"/clients/{other_plan}/campaigns/{first['id']}").status_code == 404


@both_sandbox_modes
def test_ad_sets_and_ads_walked_match_truth(ms, sandbox, sandbox_mode):
    truth = sandbox.truth(API)[API]
    campaigns, _ = ms.walk("/campaigns", limit=300)
    n_adsets = n_ads = 0
    for i, campaign in enumerate(campaigns):
        base = f"/clients/{campaign['client_id']}/campaigns/{campaign['id']}"
        if campaign["src"] == "tw":
            # Doc: ad sets are "Only available for Facebook Campaigns". Doc mode
            # refuses the request, the default mode lists none; no ads either.
            adsets = ms.get(base + "/adsets")
            assert adsets.status_code == 404 if sandbox_mode == "doc_shapes" else adsets.json()["data"] == []
            assert ms.walk(base + "/ads", limit=300) == ([], 1)
            continue
        adsets, _ = ms.walk(base + "/adsets", limit=300)
        ads, _ = ms.walk(base + "/ads", limit=300)
        assert 2 <= len(adsets) <= 4 and len(adsets) <= len(ads) <= 3 * len(adsets)
        n_adsets, n_ads = n_adsets + len(adsets), n_ads + len(ads)
        if i < 5:  # the per-ad-set routes, on a sample
            assert all(set(s) == ADSET_KEYS for s in adsets)
            from_sets = []
            for adset in adsets:
                assert ms.ok(f"{base}/adsets/{adset['id']}") == {"data": adset}
                set_ads, _ = ms.walk(f"{base}/adsets/{adset['id']}/ads")
                from_sets += set_ads
                for ad in set_ads:
                    assert AD_KEYS <= set(ad)
                    assert ms.ok(f"{base}/adsets/{adset['id']}/ads/{ad['id']}") == ad  # bare, as in the doc
            assert from_sets == ads
            assert ms.get(f"{base}/adsets/{adsets[0]['id']}/ads/1").status_code == 404
            assert ms.get(f"{base}/adsets/1").status_code == 404
    assert n_adsets == truth["ad_sets"]["count"]
    assert n_ads == truth["ads"]["count"]


# -------------------------------------------------------------------- pagination
def test_pagination_small_limit_cap_and_validation(ms, sandbox):
    total = sandbox.truth(API)[API]["campaigns"]["count"]
    rows, pages = ms.walk("/campaigns", limit=7)
    assert pages == math.ceil(total / 7)
    assert len(rows) == len({r["id"] for r in rows}) == total
    first = ms.ok("/campaigns", limit=7)
    assert first["range"] == {
        "total": total, "limit": 7, "nb_pages": pages, "page": 1, "results": 7,
        "next": f"{ms.base}/campaigns?limit=7&key={ms.key}&page=2",
    }  # fmt: skip
    one, pages = ms.walk("/campaigns", limit=300)
    assert pages == 1 and [r["id"] for r in one] == [r["id"] for r in rows]
    # Doc examples: range.next keeps limit, key and page only. Followed as is it asks
    # page 2 of another query (level client, lifetime): a client must ask page N itself.
    stats = ms.ok("/clients/901/statistics", aggregate="day", start_date=0, level="ad", limit=50)["range"]
    assert stats["nb_pages"] > 2 and stats["next"] == f"{ms.base}/clients/901/statistics?limit=50&key={ms.key}&page=2"
    assert requests.get(stats["next"], timeout=30).json()["data"] == []
    capped = ms.ok("/campaigns", limit=1000)["range"]
    assert capped["limit"] == 300 and capped["results"] == total and capped["next"] is None
    assert ms.ok("/campaigns")["range"]["limit"] == 100  # documented default
    for params in ({"limit": 0}, {"page": 0}, {"limit": "abc"}, {"page": "x"}):
        response = ms.get("/campaigns", **params)
        assert response.status_code == 400 and "message" in response.json(), params
    beyond = ms.ok("/campaigns", limit=100, page=3)
    assert beyond["data"] == [] and beyond["range"]["next"] is None and beyond["range"]["results"] == 0


# -------------------------------------------------------------------- statistics
def test_statistics_rows_carry_ids_date_and_the_documented_fields(ms):
    plan = ms.ok("/clients")["data"][0]
    rows = ms.ok(f"/clients/{plan['id']}/statistics", aggregate="day", start_date=0, level="ad", limit=5)["data"]
    row = rows[0]
    assert set(row) == STATS_KEYS | {"client_id", "campaign_id", "adset_id", "ad_id", "date"}
    assert date.fromisoformat(row["date"])
    names = [m["name"] for m in row["main_metrics"]]
    assert set(CONVERSIONS) | {"link_click", "like", "video_view"} <= set(names) and len(names) == 19
    assert all(set(m) == {"name", "amount", "number", "object_id"} for m in row["main_metrics"])
    assert row["other_metrics"] == []
    lifetime = ms.ok(f"/clients/{plan['id']}/statistics")["data"]  # defaults: period, level client
    assert len(lifetime) == 1 and set(lifetime[0]) == STATS_KEYS | {"client_id"}


def test_statistics_tie_out_across_levels_and_endpoints(ms):
    plan = ms.ok("/clients")["data"][4]  # an app-install plan: purchases carry amounts
    path = f"/clients/{plan['id']}/statistics"
    levels = {level: ms.walk(path, aggregate="day", start_date=0, level=level, limit=300)[0] for level in ("client", "campaign", "adset", "ad")}
    reference = by_date(levels["client"])
    for level, rows in levels.items():
        assert by_date(rows) == reference, level
    assert totals(levels["ad"])["app_custom_event.fb_mobile_purchase.amount"] > 0
    assert totals(levels["ad"])["income"] == sum(totals(levels["ad"])[f"{n}.amount"] for n in CONVERSIONS)

    campaign_id = levels["campaign"][0]["campaign_id"]
    base = f"/clients/{plan['id']}/campaigns/{campaign_id}"
    own = [r for r in levels["campaign"] if r["campaign_id"] == campaign_id]
    assert ms.walk(base + "/statistics", aggregate="day", start_date=0)[0] == own
    by_ad = ms.walk(base + "/statistics", aggregate="day", start_date=0, level="ad")[0]
    assert by_date(by_ad) == by_date(own)
    adset_id = by_ad[0]["adset_id"]
    adset_rows = ms.walk(f"{base}/adsets/{adset_id}/statistics", aggregate="day", start_date=0)[0]
    assert adset_rows == [r for r in levels["adset"] if r["adset_id"] == adset_id]
    ad_id = by_ad[0]["ad_id"]
    ad_rows = [r for r in levels["ad"] if r["ad_id"] == ad_id]
    assert ms.walk(f"{base}/ads/{ad_id}/statistics", aggregate="day", start_date=0)[0] == ad_rows
    assert ms.walk(f"{base}/adsets/{adset_id}/ads/{ad_id}/statistics", aggregate="day", start_date=0)[0] == ad_rows
    # period and month aggregates are sums of the same days
    period = ms.ok(base + "/statistics")["data"]
    assert len(period) == 1 and totals(period) == totals(own)
    months = ms.walk(base + "/statistics", aggregate="month", start_date=0)[0]
    assert totals(months) == totals(own) and all(len(m["month"]) == 7 for m in months)


def test_statistics_walked_match_truth(ms, sandbox):
    truth = sandbox.truth(API)[API]
    currency = {a["id"]: a.get("currency") for a in ms.ok("/accounts")["data"]}
    count, impressions, clicks, conversions = 0, 0, 0, {n: 0 for n in CONVERSIONS}
    spent: dict[str, Decimal] = defaultdict(Decimal)
    value: dict[str, Decimal] = defaultdict(Decimal)
    ad_rows_total = 0
    for plan in ms.ok("/clients")["data"]:
        path = f"/clients/{plan['id']}/statistics"
        rows, _ = ms.walk(path, aggregate="day", start_date=0, level="campaign", limit=300)
        if plan["id"] == TWITTER_PLAN_ID:
            assert rows == []
            continue
        cur = currency[plan["account_id"]]
        count += len(rows)
        t = totals(rows)
        impressions, clicks = impressions + t["impression"], clicks + t["click"]
        spent[cur] += t["spent"]
        for n in CONVERSIONS:
            conversions[n] += t[f"{n}.number"]
            value[cur] += t[f"{n}.amount"]
        ad_rows_total += ms.ok(path, aggregate="day", start_date=0, level="ad", limit=1)["range"]["total"]
    expected = truth["campaign_stats_daily"]
    assert count == expected["count"]
    assert (impressions, clicks) == (expected["sum_impressions"], expected["sum_clicks"])
    assert {c: str(v) for c, v in spent.items()} == expected["sum_spent_by_currency"]
    assert set(spent) == {"USD", "EUR", "GBP"}  # the Twitter plan (no currency) has no rows
    assert conversions == expected["sum_conversions_by_name"] and sum(conversions.values()) == expected["sum_conversions"]
    assert {c: Decimal(v) for c, v in value.items()} == {c: Decimal(v) for c, v in expected["sum_conversions_value_by_currency"].items()}
    assert ad_rows_total == truth["ad_stats_daily"]["count"] > count
    # Ad-level sums of one plan against its truth totals
    plan = ms.ok("/clients")["data"][1]
    rows, pages = ms.walk(f"/clients/{plan['id']}/statistics", aggregate="day", start_date=0, level="ad", limit=300)
    assert pages > 1
    plan_truth = truth["media_plans"]["by_id"][plan["id"]]
    t = totals(rows)
    assert (t["impression"], t["click"]) == (plan_truth["sum_impressions"], plan_truth["sum_clicks"])
    assert {currency[plan["account_id"]]: str(t["spent"])} == plan_truth["sum_spent_by_currency"]


def test_date_window_is_end_exclusive_in_the_account_timezone(ms, sandbox):
    now = now_of(sandbox)
    accounts = {a["id"]: a for a in ms.ok("/accounts")["data"]}
    for account_id, plans in plans_by_account(ms).items():
        if account_id == TWITTER_ACCOUNT.id:  # paused campaigns: no figures
            continue
        tz = accounts[account_id]["timezone"]
        path = f"/clients/{plans[0]['id']}/statistics"
        rows = ms.walk(path, aggregate="day", start_date=0)[0]
        today = local_today(tz, now)
        assert rows[-1]["date"] == today.isoformat(), tz  # the partial current day is there
        d = today - timedelta(days=10)
        window = {"aggregate": "day", "start_date": ts(midnight(tz, d)), "end_date": ts(midnight(tz, d + timedelta(days=3)))}
        dates = [r["date"] for r in ms.ok(path, **window)["data"]]
        assert dates == [(d + timedelta(days=n)).isoformat() for n in range(3)]
        window["end_date"] += 1  # the next day's midnight is now inside
        assert ms.ok(path, **window)["data"][-1]["date"] == (d + timedelta(days=3)).isoformat()
        utc_start = ts(datetime.combine(d, time(0), UTC))
        first = ms.ok(path, aggregate="day", start_date=utc_start)["data"][0]["date"]
        # UTC midnight is after local midnight east of UTC (Berlin), before it west of it.
        expected_first = d + timedelta(days=1) if midnight(tz, d) < datetime.fromtimestamp(utc_start, UTC) else d
        assert first == expected_first.isoformat(), tz


def test_statistics_parameter_validation(ms):
    campaign = ms.ok("/campaigns", limit=1)["data"][0]
    base = f"/clients/{campaign['client_id']}/campaigns/{campaign['id']}/statistics"
    bad = [
        {"aggregate": "week"},
        {"aggregate": "day"},  # start_date is required unless aggregate is period
        {"aggregate": "month"},
        {"level": "client"},  # above the campaign
        {"level": "nope"},
        {"start_date": "yesterday"},
        {"start_date": 1000, "end_date": 1000},
        {"limit": 0},
    ]
    for params in bad:
        response = ms.get(base, **params)
        assert response.status_code == 400 and "message" in response.json(), params
    assert ms.ok(base, aggregate="day", start_date=0, limit=1000)["range"]["limit"] == 300
    assert ms.ok(base, aggregate="day", start_date=2_000_000_000)["data"] == []
    assert ms.get(f"/clients/{campaign['client_id']}/campaigns/1/statistics").status_code == 404


# ------------------------------------------------------------------------ advance
def test_advance_adds_days_restates_the_last_three_and_nothing_else(ms, sandbox):
    truth_before = sandbox.truth(API)[API]
    old_now = now_of(sandbox)
    plans = ms.ok("/clients")["data"]
    accounts = {a["id"]: a for a in ms.ok("/accounts")["data"]}

    def snapshot() -> dict[tuple[str, str], dict[str, Any]]:
        out = {}
        for plan in plans[:4]:  # one plan per account: every timezone
            for row in ms.walk(f"/clients/{plan['id']}/statistics", aggregate="day", start_date=0, level="campaign", limit=300)[0]:
                out[(row["campaign_id"], row["date"])] = row
        return out

    before = snapshot()
    dims = [ms.ok(p) for p in ("/accounts", "/advertisers", "/clients", "/campaigns")]
    sandbox.advance(1)
    new_now = now_of(sandbox)
    after = snapshot()
    assert [ms.ok(p) for p in ("/accounts", "/advertisers", "/clients", "/campaigns")] == dims
    tz_of_campaign = {r["id"]: accounts[r["account_id"]]["timezone"] for r in ms.walk("/campaigns", limit=300)[0]}
    assert set(before) < set(after)
    changed = unchanged = 0
    for (campaign_id, day), row in before.items():
        tz = tz_of_campaign[campaign_id]
        age = (local_today(tz, old_now) - date.fromisoformat(day)).days
        if age >= 3:
            assert after[(campaign_id, day)] == row
            unchanged += 1
        else:
            assert after[(campaign_id, day)]["impression"] > row["impression"]  # restated upwards
            changed += 1
    assert changed and unchanged
    for campaign_id in {c for c, _ in before}:
        latest = max(d for c, d in after if c == campaign_id)
        assert latest == local_today(tz_of_campaign[campaign_id], new_now).isoformat()
    truth_after = sandbox.truth(API)[API]
    for key in ("accounts", "advertisers", "campaigns", "ad_sets", "ads"):
        assert truth_after[key] == truth_before[key]
    with_figures = len(tz_of_campaign) - len(TW_CAMPAIGN_IDS)
    assert truth_after["campaign_stats_daily"]["count"] == truth_before["campaign_stats_daily"]["count"] + with_figures
    assert truth_after["ad_stats_daily"]["sum_impressions"] > truth_before["ad_stats_daily"]["sum_impressions"]


def test_partial_today_grows_within_the_day(ms, sandbox):
    plan = ms.ok("/clients")["data"][0]
    path = f"/clients/{plan['id']}/statistics"
    before = ms.walk(path, aggregate="day", start_date=0)[0]
    sandbox.advance(1 / 24)
    after = ms.walk(path, aggregate="day", start_date=0)[0]
    if len(after) == len(before):  # still the same local day (not crossing midnight)
        assert after[-1]["impression"] > before[-1]["impression"]
    assert after[: len(before) - 3] == before[: len(before) - 3]  # final days never move


# ------------------------------------------------------------- determinism, faults
def test_determinism_same_seed_same_responses_and_advance_is_additive(ms, sandbox):
    paths = [("/campaigns", {"limit": 300}), ("/clients/903/statistics", {"aggregate": "day", "start_date": 0, "level": "ad", "limit": 300})]
    first = [ms.get(p, **q).content for p, q in paths]
    sandbox.reset()
    assert [ms.get(p, **q).content for p, q in paths] == first
    sandbox.advance(2)
    two_days = (sandbox.truth(API), ms.get(paths[1][0], **paths[1][1]).content)
    sandbox.reset()
    sandbox.advance(1)
    sandbox.advance(1)
    assert (sandbox.truth(API), ms.get(paths[1][0], **paths[1][1]).content) == two_days
    sandbox.reset(seed=TEST_SEED + 1, now=TEST_NOW.isoformat())
    assert ms.get(paths[1][0], **paths[1][1]).content != first[1]


def test_injected_faults_are_seen(ms, sandbox):
    sandbox.add_fault("503", api=API, count=1)
    assert ms.get("/accounts").status_code == 503
    assert ms.get("/accounts").status_code == 200
    sandbox.add_fault("429", api=API, count=1, retry_after=3)
    throttled = ms.get("/campaigns")
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "3"
    sandbox.add_fault("truncate", api=API, count=1, path_contains="/statistics")
    with pytest.raises((requests.exceptions.RequestException, ValueError)):
        ms.get("/clients/901/statistics", aggregate="day", start_date=0).json()
    log = sandbox.requests(API)
    assert [e["fault"] for e in log] == ["503", None, "429", "truncate"]
    assert all(e["query"]["key"] == "***" for e in log)


def test_truth_is_remembered_per_world_and_clock_and_handed_out_as_a_copy():
    from sandbox.marin_social.models import _TRUTHS, MarinStore

    world = World(seed=TEST_SEED + 1, scale=0.2, now=TEST_NOW)
    store = MarinStore(world)
    first = store.truth()
    assert first == store._truth() and (world.seed, world.scale, world.start, world.now) in _TRUTHS
    first["ads"]["count"] = -1  # a caller's changes stay its own
    later = MarinStore(World(seed=TEST_SEED + 1, scale=0.2, now=TEST_NOW)).truth()
    assert later == store._truth() and later["ads"]["count"] != -1
    world.now += timedelta(days=1)  # what advance does: the statistics follow the clock
    assert store.truth() == store._truth() != later


def test_truth_of_a_world_advanced_to_a_moment_is_not_that_of_a_world_made_at_it():
    from sandbox.marin_social.models import MarinStore

    advanced = MarinStore(World(seed=TEST_SEED + 1, scale=0.2, now=TEST_NOW))
    advanced.world.now += timedelta(days=2)
    made_later = MarinStore(World(seed=TEST_SEED + 1, scale=0.2, now=TEST_NOW + timedelta(days=2)))
    assert advanced.truth() == advanced._truth()
    assert made_later.truth() == made_later._truth() != advanced._truth()
