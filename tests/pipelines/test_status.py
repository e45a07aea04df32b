"""Freshness (pipelines/status.py) on a warehouse written by hand, on DuckDB and on
PostgreSQL: what each table and source is judged, and that the whole check reads the
warehouse on one connection (it runs at the end of every published run and in every
`status`), also after a query on it failed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import duckdb
import pytest

from pipelines.status import check_freshness

NOW = datetime(2026, 12, 5, 12, tzinfo=UTC)
WAREHOUSE_SQL = """
    create schema ops;
    create table ops.runs (source varchar, status varchar, finished_at timestamptz);
    insert into ops.runs values
        ('retreaver', 'loaded', '2026-12-05 11:00:00+00'), ('retreaver', 'failed', '2026-12-05 11:30:00+00'),
        ('fx', 'loaded', '2026-12-05 11:00:00+00'), ('loops', 'loaded', '2026-12-05 11:00:00+00');
    create schema retreaver;
    create table retreaver._dlt_loads (load_id varchar, inserted_at timestamptz, status bigint);
    insert into retreaver._dlt_loads values ('1.1', '2026-12-05 11:00:00+00', 0);
    create table retreaver.calls (_dlt_load_id varchar, updated_at timestamptz);
    insert into retreaver.calls values ('1.1', '2026-11-30 08:00:00+00'), ('1.1', '2026-12-01 00:00:00+00');
    create table retreaver.calls__tags (_dlt_parent_id varchar, value varchar);
    create table retreaver.targets (_dlt_load_id varchar, id bigint);
    insert into retreaver.targets values ('1.1', 7);
    create schema fx;
    create table fx._dlt_loads (load_id varchar, inserted_at timestamptz, status bigint);
    insert into fx._dlt_loads values ('2.1', '2026-12-05 11:00:00+00', 0);
    create table fx.rates (_dlt_load_id varchar, rate_date date);
    insert into fx.rates values ('2.1', '2026-12-04');
"""


def execute(dsn_or_path: str, sql: str) -> None:
    if "://" not in dsn_or_path:
        with duckdb.connect(dsn_or_path) as con:
            con.execute(sql)
        return
    import psycopg2

    con = psycopg2.connect(dsn_or_path)
    try:
        con.autocommit = True
        with con.cursor() as cur:
            cur.execute(sql)
    finally:
        con.close()


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse(request, tmp_path, monkeypatch):
    """The warehouse path the CLI is given, and where the SQL above was written."""
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt"))
    path = tmp_path / "w.duckdb"
    where = str(path)
    if request.param == "postgres":
        where = request.getfixturevalue("postgres_server").create_database("status_" + uuid.uuid4().hex[:8])
        monkeypatch.setenv("WAREHOUSE__DESTINATION", "postgres")
        monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", where)
    execute(where, WAREHOUSE_SQL)
    return path, where


def test_each_source_is_judged_on_its_own_tables_and_runs(warehouse):
    fresh = check_freshness(warehouse[0], now=NOW)
    by_source = {s.source: s for s in fresh.sources}
    assert list(by_source) == ["retreaver", "loops", "fx"]
    assert fresh.absent == ["listenloop", "marin_social", "inboxfirst"]  # no dataset, no run

    retreaver = by_source["retreaver"]
    assert (retreaver.last_run_status, retreaver.last_success_at) == ("failed", "2026-12-05T11:00:00Z")
    tables = {t.table: t for t in retreaver.tables}
    assert list(tables) == ["calls", "targets"]  # the child table carries no load id of its own
    calls = tables["calls"]
    assert (calls.rows, calls.newest_cursor, calls.age_hours, calls.last_loaded_at) == (2, "2026-12-01T00:00:00Z", 108.0, "2026-12-05T11:00:00Z")
    assert calls.stale and retreaver.stale and retreaver.reasons == ["calls: newest updated_at 2026-12-01T00:00:00Z is older than 48 h"]
    assert tables["targets"].cursor_column is None and not tables["targets"].stale

    # A rate date counts until the end of its day; the rates' own floor is 120 h.
    (rates,) = by_source["fx"].tables
    assert (rates.age_hours, rates.stale_after_hours, rates.stale) == (12.0, 120.0, False)
    assert not by_source["loops"].stale and by_source["loops"].tables == []  # ran, no table to judge
    assert fresh.stale

    asked = check_freshness(warehouse[0], sources=["listenloop", "fx"], now=NOW)
    assert [(s.source, s.reasons) for s in asked.sources] == [("listenloop", ["never loaded"]), ("fx", [])]

    # ops without its runs table: that query fails, and the same connection goes on
    # to read every source (on PostgreSQL a failed query resets it).
    execute(warehouse[1], "drop table ops.runs")
    after = check_freshness(warehouse[0], now=NOW)
    assert [s.source for s in after.sources] == ["retreaver", "fx"] and after.absent[-1] == "loops"
    assert [t.table for t in after.sources[0].tables] == ["calls", "targets"] and after.sources[0].last_run_at is None


def test_the_check_reads_every_dataset_on_one_connection(tmp_path, monkeypatch):
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt"))
    path = tmp_path / "w.duckdb"
    execute(str(path), WAREHOUSE_SQL)
    opened: list[str] = []
    connect = duckdb.connect

    def counting_connect(*args, **kwargs):
        opened.append(str(kwargs.get("database", args[0] if args else "")))
        return connect(*args, **kwargs)

    monkeypatch.setattr(duckdb, "connect", counting_connect)
    fresh = check_freshness(path, now=NOW)
    assert len(fresh.sources) == 3
    assert opened == [str(path)]
