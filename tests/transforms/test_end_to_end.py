"""Sandbox -> sources -> transforms: the marts' totals equal the sandbox's truth,
after a full load and again after the clock advances and the pipeline re-runs, on
DuckDB (both sandbox modes) and on PostgreSQL."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import pytest

from pipelines.runner import SOURCE_NAMES
from pipelines.status import check_freshness
from pipelines.transform import run_transforms
from tests.conftest import both_sandbox_modes
from tests.sources.conftest import Warehouse

# Loops feeds no mart; leaving it out keeps the test fast (it is paced at 9 req/s).
# FX gives daily rates: the shipped seed's monthly rows alone are older than the
# fx_rate_not_stale limit (7 days) on most days.
SOURCES = ("listenloop", "marin_social", "inboxfirst", "retreaver", "fx")
# A smaller world than the source tests' (scale 1), as in the demo: every source,
# all three Marin currencies, multi-page reads and the transforms still run whole;
# a load and build take about half as long. The truth is the sandbox's at this scale.
E2E_SCALE = 0.1


@pytest.fixture
def sandbox_scale() -> float:
    """tests/conftest.py's sandbox (and so the warehouse fixture) at E2E_SCALE."""
    return E2E_SCALE


def load_and_build(warehouse):
    result = warehouse.run(*SOURCES)
    assert [s.status for s in result.sources] == ["loaded"] * len(SOURCES), [(s.name, s.message) for s in result.sources]
    built = run_transforms(warehouse.path)
    assert built.status == "built", built.message
    assert all(test.ok for test in built.tests)
    return built


def spend_local(warehouse, platform, currency=None):
    sql = "select coalesce(sum(spend_local), 0) from marts.spend_daily where platform = ?"
    params = [platform]
    if currency:
        sql += " and currency_code = ?"
        params.append(currency)
    return warehouse.scalar(sql, params)


def assert_marts_equal_truth(sandbox, warehouse):
    truth = sandbox.truth()
    marin = truth["marin_social"]["campaign_stats_daily"]
    for currency, total in marin["sum_spent_by_currency"].items():
        assert spend_local(warehouse, "marin_social", currency) == Decimal(total), currency
    assert warehouse.scalar("select sum(impressions) from marts.spend_daily where platform = 'marin_social'") == marin["sum_impressions"]
    assert warehouse.scalar("select sum(clicks) from marts.spend_daily where platform = 'marin_social'") == marin["sum_clicks"]
    assert (
        warehouse.scalar("select sum(conversions) from marts.conversions_daily where platform = 'marin_social' and conversion_type = 'main_metrics'")
        == marin["sum_conversions"]
    )

    listenloop = truth["listenloop"]["campaigns"]
    # Over all days, the snapshot deltas add up to the latest lifetime counters.
    assert warehouse.scalar("select sum(impressions) from marts.spend_daily where platform = 'listenloop'") == listenloop["sum_impressions_count"]
    assert warehouse.scalar("select sum(clicks) from marts.spend_daily where platform = 'listenloop'") == listenloop["sum_clicks_count"]
    # The contract's estimate: CPM bid per thousand impressions, or ecpc_target per click.
    assert spend_local(warehouse, "listenloop") == Decimal(listenloop["estimated_spend"])
    assert warehouse.scalar("select bool_and(is_spend_estimated) from marts.spend_daily where platform = 'listenloop'") is True
    # History before the first snapshot is spread over the active days: no day holds
    # more than a plausible day of the campaign's budget (pacing tops out near 1.1x).
    assert warehouse.scalar(
        "select count(*) from marts.spend_daily as d join staging.stg_listenloop__campaigns as c using (campaign_id)"
        " where d.platform = 'listenloop' and d.spend_local > 1.5 * c.daily_budget"
    ) == 0

    calls = truth["retreaver"]["calls"]
    assert spend_local(warehouse, "retreaver") == Decimal(calls["sum_payout"]) + Decimal(calls["sum_cost"])
    assert warehouse.scalar("select count(*) from marts.call_conversions") == calls["converted"]
    # Revenue is only set on converted calls, and USD reports in USD at rate 1.
    assert warehouse.scalar("select sum(revenue) from marts.call_conversions") == Decimal(calls["sum_revenue"])
    assert warehouse.scalar("select sum(conversions) from marts.conversions_daily where conversion_type = 'phone_call'") == calls["converted"]

    email = truth["inboxfirst"]["campaigns"]
    assert warehouse.scalar("select sum(impressions) from marts.spend_daily where platform = 'inboxfirst'") == email["sum_accepted"]
    assert warehouse.scalar("select sum(clicks) from marts.spend_daily where platform = 'inboxfirst'") == email["sum_clicks_unique"]

    # Every mart row has a rate, and every reconciliation check holds.
    assert warehouse.scalar("select count(*) from marts.spend_daily where fx_rate is null") == 0
    assert warehouse.scalar("select count(*) from marts.reconciliation where not is_ok") == 0
    # Every converted call is on exactly one dashboard row: summing over platforms
    # gives the converted calls and their revenue, never more.
    summed_calls, summed_revenue = warehouse.query("select sum(calls), sum(call_revenue) from marts.marketing_daily")[0]
    assert summed_calls == calls["converted"]
    assert summed_revenue == Decimal(calls["sum_revenue"])
    # The Retreaver rows keep only the calls attributed to no campaign.
    assert warehouse.scalar("select sum(calls) from marts.marketing_daily where platform = 'retreaver'") == warehouse.scalar(
        "select count(*) from marts.call_conversions where not is_attributed"
    )
    # Unknown is null, never 0: no cost per click or conversion without known spend.
    assert warehouse.scalar("select count(*) from marts.marketing_daily where cpa = 0 or cpc = 0") == 0
    assert warehouse.scalar("select count(*) from marts.marketing_daily where platform = 'inboxfirst' and spend is not null and spend <> 0") == 0


class PostgresWarehouse(Warehouse):
    """The same warehouse on PostgreSQL, by configuration only; ``path`` only names the lock."""

    def __init__(self, path, url: str):
        super().__init__(path)
        self.url = url

    @contextmanager
    def reading(self) -> Iterator[PostgresWarehouse]:
        """No DuckDB file to hold open: each query connects to PostgreSQL."""
        yield self

    def query(self, sql: str, params: list[Any] | None = None) -> list[tuple]:
        import psycopg2

        with psycopg2.connect(self.url) as con, con.cursor() as cur:
            cur.execute(sql.replace("?", "%s"), params or [])
            return cur.fetchall()


_databases = itertools.count()


@pytest.fixture
def postgres_warehouse(warehouse, postgres_server, monkeypatch):
    url = postgres_server.create_database(f"end_to_end_{next(_databases)}")
    monkeypatch.setenv("WAREHOUSE__DESTINATION", "postgres")
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", url)
    return PostgresWarehouse(warehouse.path, url)


@both_sandbox_modes
def test_marts_equal_truth_after_full_load_and_after_advance(sandbox, warehouse):
    full_load_advance_and_reload(sandbox, warehouse)


def test_marts_equal_truth_on_postgres(sandbox, postgres_warehouse):
    full_load_advance_and_reload(sandbox, postgres_warehouse)


def full_load_advance_and_reload(sandbox, warehouse):
    load_and_build(warehouse)
    with warehouse.reading():  # one connection for the checks' ~25 queries; closed before the next load
        assert_marts_equal_truth(sandbox, warehouse)
        converted_before = warehouse.scalar("select count(*) from marts.call_conversions")

    sandbox.advance(2)
    load_and_build(warehouse)
    with warehouse.reading():
        assert_marts_equal_truth(sandbox, warehouse)
        assert warehouse.scalar("select count(*) from marts.call_conversions") > converted_before
        # Two snapshots now: the growth between them is a day's figure, never negative.
        assert warehouse.scalar("select min(impressions) from marts.spend_daily where platform = 'listenloop'") >= 0


def test_two_configured_sources_get_their_marts_and_the_others_are_named_absent(sandbox, warehouse, monkeypatch):
    """A user with only Marin Social and Retreaver: the marts are built for those two,
    every data test passes, and the unconfigured platforms are named, not a skipped build."""
    sandbox.reset(doc_shapes=True)
    # FX needs no key: it is configured by default (the sandbox stands for its public host).
    configured = ("marin_social", "retreaver", "fx")
    for name in SOURCE_NAMES:
        if name not in configured:
            for key in list(sandbox.env()):
                if key.startswith(f"SOURCES__{name.upper()}__"):
                    monkeypatch.delenv(key, raising=False)
    result = warehouse.run(*SOURCE_NAMES)
    statuses = {s.name: s.status for s in result.sources}
    assert statuses == {name: ("loaded" if name in configured else "skipped") for name in SOURCE_NAMES}, result.sources

    built = run_transforms(warehouse.path)
    assert built.status == "built", built.message
    assert [t.name for t in built.tests if not t.ok] == []
    assert built.absent_sources == ["inboxfirst", "listenloop"]
    assert "without inboxfirst, listenloop" in built.message

    platforms = {r[0] for r in warehouse.query("select distinct platform from marts.spend_daily")}
    assert platforms == {"marin_social", "retreaver"}
    truth = sandbox.truth()
    marin = truth["marin_social"]["campaign_stats_daily"]
    assert warehouse.scalar("select sum(impressions) from marts.spend_daily where platform = 'marin_social'") == marin["sum_impressions"]
    assert warehouse.scalar("select count(*) from marts.call_conversions") == truth["retreaver"]["calls"]["converted"]
    assert warehouse.scalar("select count(*) from marts.reconciliation where not is_ok") == 0

    assert check_freshness(warehouse.path).absent == ["listenloop", "inboxfirst", "loops"]
