"""The DuckDB destination's merge (pipelines/warehouse.py): dlt's choice of row per
key, made with SQL DuckDB can spill, so a first load fits under a memory cap."""

from __future__ import annotations

import dlt
import duckdb
import pytest

import pipelines.runner
from pipelines.warehouse import make_pipeline
from tests.pipelines.conftest import MARKED_DEPTH, settings_seen_by_dlt_connections


@dlt.resource(name="items", primary_key="key", write_disposition="merge", columns={"version": {"data_type": "bigint", "dedup_sort": "desc"}})
def versioned(rows):
    yield rows


def loaded(warehouse, table: str = "items") -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return conn.sql(f"SELECT key, version, payload FROM dedup.{table} ORDER BY key").fetchall()


def test_merge_keeps_the_row_dlt_keeps_per_key(tmp_path, monkeypatch):
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt"))
    warehouse = tmp_path / "w.duckdb"
    pipeline = make_pipeline("dedup", warehouse)
    pipeline.run(
        versioned(
            [
                {"key": 1, "version": 1, "payload": "old"},
                {"key": 1, "version": 3, "payload": "newest"},  # dedup_sort desc: the highest version wins
                {"key": 1, "version": None, "payload": "unversioned"},  # NULL sorts last, as in dlt's window
                {"key": 2, "version": None, "payload": "only unversioned"},  # every version NULL: one row still kept
                {"key": 2, "version": None, "payload": "only unversioned"},
            ]
        ),
        loader_file_format="parquet",
    )
    assert loaded(warehouse) == [(1, 3, "newest"), (2, None, "only unversioned")]
    # The next load replaces a key's row; identical copies in one load are one row.
    pipeline.run(versioned([{"key": 2, "version": 9, "payload": "second load"}] * 2), loader_file_format="parquet")
    assert loaded(warehouse) == [(1, 3, "newest"), (2, 9, "second load")]
    assert pipeline.destination.destination_type == "dlt.destinations.duckdb"  # dlt's own type: state and dataset() key on it


@dlt.resource(name="wide", primary_key="key", write_disposition="merge")
def wide_rows(count: int):
    filler = "x" * 1500
    for start in range(0, count, 1000):
        yield [{"key": i, "version": i % 7, "payload": f"{i}-{filler}"} for i in range(start, min(start + 1000, count))]


def test_a_first_merge_bigger_than_the_memory_cap_spills_instead_of_failing(tmp_path, monkeypatch):
    """~75 MB of staging rows under a 32 MB cap: dlt's ROW_NUMBER window fails with
    DuckDB's "Out of Memory Error" (checked below, so the cap really binds); ours spills."""
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt"))
    monkeypatch.setenv("WAREHOUSE__DUCKDB_MEMORY_LIMIT", "32MB")
    monkeypatch.setenv("WAREHOUSE__DUCKDB_THREADS", "1")
    rows = 50_000
    warehouse = tmp_path / "w.duckdb"
    make_pipeline("dedup", warehouse).run(wide_rows(rows), loader_file_format="parquet")
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        assert conn.sql("SELECT count(*), count(DISTINCT key) FROM dedup.wide").fetchone() == (rows, rows)

    from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

    from pipelines.warehouse import duckdb_settings

    stock = dlt.pipeline(
        pipeline_name="stock_dedup",
        destination=dlt.destinations.duckdb(DuckDbCredentials(str(tmp_path / "stock.duckdb"), global_config=duckdb_settings())),
        dataset_name="dedup",
    )
    with pytest.raises(Exception, match="Out of Memory"):
        stock.run(wide_rows(rows), loader_file_format="parquet")


def test_loads_connect_with_the_memory_settings(tmp_path, monkeypatch):
    """The cap, one thread, no insertion order and no 'dictionary' string compression
    (docs/benchmarks.md, "Memory"), each overridable from [warehouse]."""
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt"))
    query = (
        "SELECT current_setting('memory_limit'), current_setting('threads'), "
        "current_setting('preserve_insertion_order'), current_setting('disabled_compression_methods')"
    )
    with make_pipeline("settings", tmp_path / "w.duckdb").sql_client() as client:
        assert client.execute_sql(query) == [("122.0 MiB", 1, False, "Dictionary")]  # 128 MB

    monkeypatch.setenv("WAREHOUSE__DUCKDB_MEMORY_LIMIT", "1GB")
    monkeypatch.setenv("WAREHOUSE__DUCKDB_DISABLED_COMPRESSION", "")
    with make_pipeline("settings", tmp_path / "w.duckdb").sql_client() as client:
        limit, _, _, disabled = client.execute_sql(query)[0]
    assert (limit, disabled) == ("953.6 MiB", "")


def test_a_source_loads_through_one_open_database_not_one_per_load_job(warehouse, monkeypatch):
    """dlt opens and closes the file around every load job (each open reads the
    catalog, each close checkpoints); the runner keeps it open while a source loads,
    so each of dlt's connections gets that open database. A global setting made on
    it before the load is seen by every one of them; a reopened database would
    have forgotten it."""
    seen = settings_seen_by_dlt_connections(monkeypatch, warehouse.path, pipelines.runner)
    (result,) = warehouse.run("listenloop").sources
    assert result.status == "loaded", result.message
    assert len(seen) >= 3 and set(seen) == {MARKED_DEPTH}, seen


@pytest.mark.parametrize("naming", ["snake_case", "sql_cs_v1", "sql_ci_v1"])
def test_capabilities_without_a_config_are_dlts_own(tmp_path, naming):
    """Our DuckDB destination answers capabilities() without resolving its
    configuration: the answer must stay the one dlt gives, for case-sensitive
    and case-insensitive naming conventions and for none."""
    from dlt.common.schema.normalizers import naming_from_reference

    from pipelines.warehouse import make_destination

    ours = make_destination(tmp_path / "w.duckdb")
    theirs = dlt.destinations.duckdb(str(tmp_path / "w.duckdb"))
    convention = naming_from_reference(naming)
    for args in ((), (None, convention)):
        assert dict(ours.capabilities(*args)) == dict(theirs.capabilities(*args))
