"""The serving file: published atomically, never blocking or blocked by readers."""

from __future__ import annotations

import subprocess
import sys
import time

import duckdb

from pipelines.publish import publish, serving_path

READER = """
import duckdb, sys, time
con = duckdb.connect(sys.argv[1], read_only=True)
print(con.execute("select total from marts.kpi").fetchone()[0], flush=True)
sys.stdin.readline()  # hold the file open until told to read again
print(con.execute("select total from marts.kpi").fetchone()[0], flush=True)
"""


def make_warehouse(path, total):
    with duckdb.connect(str(path)) as con:
        con.execute("create schema if not exists marts")
        con.execute("create schema if not exists raw")
        con.execute(f"create or replace table marts.kpi as select {total} as total")
        con.execute("create or replace table raw.secret_stuff as select 1 as x")


def test_publish_copies_only_the_marts_and_replaces_the_file_atomically(tmp_path):
    warehouse = tmp_path / "marketing.duckdb"
    make_warehouse(warehouse, 1)
    target = publish(warehouse)
    assert target == serving_path(warehouse) == tmp_path / "marketing.serving.duckdb"
    with duckdb.connect(str(target), read_only=True) as con:
        assert con.execute("select total from marts.kpi").fetchone() == (1,)
        schemas = {r[0] for r in con.execute("select schema_name from duckdb_tables()").fetchall()}
    assert schemas == {"marts"}
    assert not list(tmp_path.glob(".*building*"))


def test_a_reader_holding_the_serving_file_neither_blocks_nor_sees_a_half_state(tmp_path):
    warehouse = tmp_path / "marketing.duckdb"
    make_warehouse(warehouse, 1)
    target = publish(warehouse)
    reader = subprocess.Popen([sys.executable, "-c", READER, str(target)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout.readline().strip() == "1"
        make_warehouse(warehouse, 2)  # the writer is not blocked by the BI reader
        started = time.monotonic()
        publish(warehouse)
        assert time.monotonic() - started < 10
        reader.stdin.write("\n")
        reader.stdin.flush()
        assert reader.stdout.readline().strip() == "1"  # the old, complete copy
    finally:
        reader.kill()
        reader.wait()
    with duckdb.connect(str(target), read_only=True) as con:
        assert con.execute("select total from marts.kpi").fetchone() == (2,)  # new connections see the new build
