"""ListenLoop source against the sandbox: campaigns merged, snapshots appended."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest

from sources.catalog import declared_columns
from tests.conftest import both_sandbox_modes, sandbox_server_of

sandbox_server = sandbox_server_of("listenloop")

# What the sandbox serves per page when asked for 100: the contract's cap, or the
# lower cap of the doc-shaped mode (the index endpoint is undocumented).
SERVED_PER_PAGE = {"default": 100, "doc_shapes": 50}


def campaign_totals(warehouse):
    return warehouse.query(
        "select count(*), sum(impressions_count), sum(clicks_count), sum(page_views_count), "
        "sum(conversion_c_page_views_count) from listenloop.campaigns"
    )[0]


def expected_totals(sandbox):
    truth = sandbox.truth("listenloop")["listenloop"]["campaigns"]
    return (
        truth["count"],
        truth["sum_impressions_count"],
        truth["sum_clicks_count"],
        truth["sum_page_views_count"],
        truth["sum_conversion_c_page_views_count"],
    )


@both_sandbox_modes
def test_full_load_equals_truth_and_money_is_decimal(sandbox, warehouse):
    result = warehouse.run("listenloop")
    assert [s.status for s in result.sources] == ["loaded"], result.sources
    assert campaign_totals(warehouse) == expected_totals(sandbox)
    # One snapshot per campaign per run.
    assert warehouse.scalar("select count(*) from listenloop.campaign_snapshots") == expected_totals(sandbox)[0]
    types = dict(
        warehouse.query(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'listenloop' and table_name = 'campaigns'"
        )
    )
    assert types["daily_budget"].startswith("DECIMAL")
    assert types["created_at"] == "TIMESTAMP WITH TIME ZONE"
    assert isinstance(warehouse.scalar("select max(user_defined_cpm) from listenloop.campaigns"), Decimal)


@both_sandbox_modes
def test_second_run_merges_campaigns_and_appends_a_snapshot(sandbox, warehouse, sandbox_mode):
    warehouse.run("listenloop")
    seq = sandbox.requests("listenloop")[-1]["seq"]
    result = warehouse.run("listenloop")
    assert result.sources[0].status == "loaded"
    count = expected_totals(sandbox)[0]
    # Only an empty page ends the walk: with the doc-shaped cap (50 < the 100 asked)
    # the short page 2 is not taken for the last.
    pages = -(-count // SERVED_PER_PAGE[sandbox_mode]) + 1
    assert len(sandbox.requests("listenloop", since=seq)) == pages
    assert warehouse.scalar("select count(*) from listenloop.campaigns") == count
    assert warehouse.scalar("select count(distinct snapshot_at) from listenloop.campaign_snapshots") == 2
    assert warehouse.scalar("select count(*) from listenloop.campaign_snapshots") == 2 * count


def test_advance_then_run_equals_truth_with_grown_counters(sandbox, warehouse):
    warehouse.run("listenloop")
    before = campaign_totals(warehouse)
    sandbox.advance(2)
    warehouse.run("listenloop")
    after = campaign_totals(warehouse)
    assert after == expected_totals(sandbox)
    assert after[1] > before[1]
    # Latest snapshot's counters equal the campaigns table's lifetime counters.
    latest = warehouse.scalar(
        "select sum(impressions_count) from listenloop.campaign_snapshots "
        "where snapshot_at = (select max(snapshot_at) from listenloop.campaign_snapshots)"
    )
    assert latest == after[1]


def test_wrong_credentials_fail_at_once_without_retries(sandbox, warehouse, monkeypatch):
    monkeypatch.setenv("SOURCES__LISTENLOOP__API_KEY", "wrong-token-123456")
    result = warehouse.run("listenloop")
    (source,) = result.sources
    assert source.status == "failed"
    assert "401" in source.message
    assert "wrong-token-123456" not in source.message
    assert len(sandbox.requests("listenloop")) == 1


def test_recovers_from_429_and_5xx(sandbox, warehouse):
    sandbox.add_fault("429", api="listenloop", count=2, retry_after=1)
    sandbox.add_fault("503", api="listenloop", count=2)
    result = warehouse.run("listenloop")
    assert result.sources[0].status == "loaded", result.sources[0].message
    assert campaign_totals(warehouse) == expected_totals(sandbox)
    assert result.sources[0].requests["throttled"] == 2
    assert result.sources[0].requests["server_errors"] == 2



@pytest.mark.parametrize("kind", ["404", "429"])
def test_index_errors_fail_loudly_naming_endpoint_and_status(sandbox, warehouse, kind, caplog):
    # A persistent answer; retry_after=None sends no Retry-After, so retries back off fast.
    sandbox.add_fault(kind, api="listenloop", rate=1.0, retry_after=None)
    with caplog.at_level(logging.DEBUG):
        (source,) = warehouse.run("listenloop").sources
    assert source.status == "failed"
    assert f"listenloop: GET /listenloop/campaigns answered {kind}" in source.message
    assert "campaigns" not in warehouse.tables("listenloop")
    assert sandbox.env()["SOURCES__LISTENLOOP__API_KEY"] not in caplog.text + source.message


def test_max_pages_guard_fails_loudly(sandbox, warehouse, monkeypatch):
    monkeypatch.setenv("SOURCES__LISTENLOOP__MAX_PAGES", "1")  # page 1 is full, page 2 not allowed
    (source,) = warehouse.run("listenloop").sources
    assert source.status == "failed"
    assert "GET /listenloop/campaigns" in source.message and "SOURCES__LISTENLOOP__MAX_PAGES" in source.message


@pytest.mark.parametrize("sandbox_mode", ["doc_shapes"])
def test_null_only_columns_exist_with_their_declared_types(sandbox, warehouse):
    assert warehouse.run("listenloop").sources[0].status == "loaded"
    # end_date and user_defined_aggressiveness are null on every campaign (as in the doc).
    assert warehouse.scalar("select count(end_date) + count(user_defined_aggressiveness) from listenloop.campaigns") == 0
    for table in ("campaigns", "campaign_snapshots"):
        types = dict(
            warehouse.query(
                "select column_name, data_type from information_schema.columns where table_schema = 'listenloop' and table_name = ?",
                [table],
            )
        )
        declared = declared_columns()[f"listenloop.{table}"]
        assert set(declared) <= set(types), sorted(set(declared) - set(types))
        if table == "campaigns":
            assert (types["end_date"], types["start_date"], types["created_at"]) == ("DATE", "DATE", "TIMESTAMP WITH TIME ZONE")
        assert types["ecpc_target"] == "DECIMAL(18,6)"
