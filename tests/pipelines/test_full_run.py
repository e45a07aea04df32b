"""One full run of every source (what cron runs hourly), then what a scheduler and a
BI tool see: the run history, freshness, and a serving file held open by a reader
while the next full run completes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import duckdb
import pytest

from pipelines.publish import serving_path
from pipelines.runner import SOURCE_NAMES
from sandbox.control import SandboxControl
from tests.conftest import TEST_NOW, TEST_SEED

# A smaller world than the other tests' (scale 1): every source and the transforms
# still run whole, in half the time (Loops' 9 requests/s pacing dominates).
FULL_RUN_SCALE = 0.25

READER = """
import duckdb, sys
con = duckdb.connect(sys.argv[1], read_only=True)
query = "select count(*), sum(calls) from marts.marketing_daily"
print(con.execute(query).fetchone(), flush=True)
sys.stdin.readline()  # hold the file open until told to read again
print(con.execute(query).fetchone(), flush=True)
"""


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], capture_output=True, text=True, timeout=600, env=env)


@pytest.fixture(scope="module")
def full(sandbox_server, tmp_path_factory):
    """A warehouse after one full `marketing-etl run` of every source (module-wide: it takes ~1.5 min)."""
    control = SandboxControl(sandbox_server.base_url)
    control.reset(seed=TEST_SEED, scale=FULL_RUN_SCALE, now=TEST_NOW.isoformat())
    root = tmp_path_factory.mktemp("full")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOURCES__")}
    env.update(control.env())
    env.update({"DLT_DATA_DIR": str(root / "dlt"), "RUNTIME__REQUEST_BACKOFF_FACTOR": "0.05"})
    warehouse = root / "marketing.duckdb"
    result = cli("run", "--json", "--warehouse", str(warehouse), env=env)
    return warehouse, env, result


def test_a_full_run_succeeds_and_records_every_source_and_the_transforms(full):
    warehouse, _, result = full
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    statuses = {r["source"]: r["status"] for r in summary["runs"]}
    assert statuses == {**{name: "loaded" for name in SOURCE_NAMES}, "transforms": "built"}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        recorded = dict(con.execute("select source, status from ops.runs where run_id = ?", [summary["run_id"]]).fetchall())
    assert recorded == statuses
    assert serving_path(warehouse).exists()


def test_status_flags_data_older_than_the_threshold_even_after_a_green_run(full):
    warehouse, env, _ = full
    # The sandbox world ends 10 days before the wall clock: every run is green, yet
    # the newest call, stat day and report day are 10 days old.
    stale = cli("status", "--json", "--warehouse", str(warehouse), env=env)
    assert stale.returncode == 5, stale.stderr
    doc = json.loads(stale.stdout)
    by_source = {s["source"]: s for s in doc["sources"]}
    retreaver = by_source["retreaver"]
    assert retreaver["stale"] and retreaver["last_run_status"] == "loaded" and retreaver["last_success_at"]
    calls = next(t for t in retreaver["tables"] if t["table"] == "calls")
    assert calls["stale"] and calls["cursor_column"] == "updated_at" and 239 < calls["age_hours"] < 251
    assert calls["rows"] > 0 and calls["last_loaded_at"]
    assert "retreaver stale: calls: newest updated_at" in stale.stderr
    # Tables without a time column of their own are listed, not judged.
    catalogue = next(t for t in retreaver["tables"] if t["table"] == "targets")
    assert catalogue["cursor_column"] is None and not catalogue["stale"]
    assert not by_source["loops"]["stale"]  # no cursor, and its run succeeded just now

    # 400 h: the newest FX rate is up to ~4.6 days older than the world's clock (weekends, Easter).
    fresh = cli("status", "--stale-after", "400", "--warehouse", str(warehouse), env=env)
    assert fresh.returncode == 0, fresh.stderr
    assert "STALE" not in fresh.stdout and "fresh  retreaver" in fresh.stdout
    configured = cli("status", "--warehouse", str(warehouse), env={**env, "OPS__FRESHNESS__STALE_AFTER_HOURS": "400"})
    assert configured.returncode == 0, configured.stderr
    per_table = cli("status", "--warehouse", str(warehouse), env={**env, "OPS__FRESHNESS__STALE_AFTER_HOURS": "300", "OPS__FRESHNESS__TABLES": '{"retreaver.calls": 24}'})
    assert per_table.returncode == 5 and "retreaver stale: calls" in per_table.stderr
    assert "marin_social stale" not in per_table.stderr


def test_status_of_a_source_never_loaded_or_a_missing_warehouse_is_stale(full, tmp_path):
    warehouse, env, _ = full
    missing = cli("status", "--warehouse", str(tmp_path / "nothing.duckdb"), env=env)
    assert missing.returncode == 5 and "nothing has been loaded" in missing.stderr
    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    never = cli("status", "--sources", "loops", "--warehouse", str(empty), env=env)
    assert never.returncode == 5 and "loops stale: never loaded" in never.stderr


def test_a_failing_data_test_exits_4_and_leaves_the_serving_file_alone(full):
    warehouse, env, _ = full
    serving = serving_path(warehouse)
    published = serving.stat().st_ino
    # A 0-day limit on rate age: weekend days convert with Friday's ECB rate, so fx_rate_not_stale must catch it.
    failed = cli("transform", "--json", "--warehouse", str(warehouse), env={**env, "TRANSFORMS__FX_MAX_RATE_AGE_DAYS": "0"})
    assert failed.returncode == 4, failed.stderr
    assert "fx_rate_not_stale" in failed.stderr
    (row,) = json.loads(failed.stdout)["runs"]
    assert row["source"] == "transforms" and row["status"] == "tests_failed" and "fx_rate_not_stale" in row["error"]
    # No rate at all for XYZ: a configuration error (exit 2), found before anything is rebuilt.
    unknown = cli("transform", "--warehouse", str(warehouse), env={**env, "TRANSFORMS__REPORTING_CURRENCY": "XYZ"})
    assert unknown.returncode == 2 and "'XYZ'" in unknown.stderr, unknown.stderr
    assert serving.stat().st_ino == published  # dashboards keep the last good build
    rebuilt = cli("transform", "--warehouse", str(warehouse), env=env)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert serving.stat().st_ino != published


def test_a_reader_holding_the_serving_file_open_does_not_block_the_next_full_run(full, sandbox):
    warehouse, env, _ = full
    serving = serving_path(warehouse)
    reader = subprocess.Popen([sys.executable, "-c", READER, str(serving)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        before = reader.stdout.readline().strip()
        assert before.startswith("(") and before != "(0, None)"
        sandbox.reset(seed=TEST_SEED, scale=FULL_RUN_SCALE, now=TEST_NOW.isoformat())  # the fixture's world
        sandbox.advance(1)  # a new day of data for the next run
        started = time.monotonic()
        again = cli("run", "--warehouse", str(warehouse), env=env)
        assert again.returncode == 0, again.stderr
        assert "published" in again.stdout
        assert time.monotonic() - started < 300
        reader.stdin.write("\n")
        reader.stdin.flush()
        assert reader.stdout.readline().strip() == before  # its old, complete copy
    finally:
        reader.kill()
        reader.wait()
    with duckdb.connect(str(serving), read_only=True) as con:
        after = str(con.execute("select count(*), sum(calls) from marts.marketing_daily").fetchone())
    assert after != before  # a new connection sees the new build
