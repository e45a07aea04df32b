"""Switching the warehouse to another dlt destination by configuration only.

Runs every source, the transforms and the status check against a real PostgreSQL
server (tests/conftest.py: the machine's own PostgreSQL binaries, a throwaway data
directory, a free port). Skipped, saying why, where PostgreSQL is not installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.runner import SOURCE_NAMES


@pytest.fixture
def sandbox_scale() -> float:
    """A smaller world than the source tests' (scale 1): every source and the
    transforms still run whole, on Postgres, in less time."""
    return 0.1


@pytest.fixture(scope="module")
def postgres(postgres_server):
    return postgres_server.create_database("marketing")


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], capture_output=True, text=True, timeout=600, env=env)


def test_every_source_transforms_and_status_run_on_postgres_by_configuration_only(postgres, sandbox, tmp_path):
    import psycopg2

    env = {k: v for k, v in os.environ.items() if not k.startswith("SOURCES__")}
    env.update(sandbox.env())
    env.update(
        {
            "DLT_DATA_DIR": str(tmp_path / "dlt"),
            "WAREHOUSE__DESTINATION": "postgres",
            "DESTINATION__POSTGRES__CREDENTIALS": postgres,
        }
    )
    lock_name = str(tmp_path / "marketing.duckdb")  # names the lock file; no DuckDB file is written
    first = cli("run", "--json", "--warehouse", lock_name, env=env)
    assert first.returncode == 0, first.stderr
    statuses = {r["source"]: r["status"] for r in json.loads(first.stdout)["runs"]}
    assert statuses == {**{name: "loaded" for name in SOURCE_NAMES}, "transforms": "built"}
    assert not Path(lock_name).exists() and not list(tmp_path.glob("*.serving.duckdb"))

    # A second build replaces views other views depend on (Postgres binds them).
    second = cli("run", "--sources", "retreaver", "--warehouse", lock_name, env=env)
    assert second.returncode == 0, second.stderr
    assert "built    transforms" in second.stdout

    with psycopg2.connect(postgres) as con, con.cursor() as cur:
        cur.execute("select count(*) from retreaver.calls")
        calls = cur.fetchone()[0]
        cur.execute("select count(*) from (select uuid from retreaver.calls group by uuid having count(*) > 1) d")
        duplicates = cur.fetchone()[0]
        cur.execute("select count(distinct run_id), count(*) from ops.runs")
        runs = cur.fetchone()
        cur.execute("select sum(calls) from marts.marketing_daily")
        mart_calls = cur.fetchone()[0]
        cur.execute("select pg_typeof(spend)::text from marts.spend_daily limit 1")
        spend_type = cur.fetchone()[0]
    assert calls == sandbox.truth("retreaver")["retreaver"]["calls"]["count"] and duplicates == 0
    assert runs == (2, len(SOURCE_NAMES) + 1 + 3)  # every source + transforms, then retreaver, fx (added to keep rates current) + transforms
    assert mart_calls > 0
    assert spend_type == "numeric"  # money stays DECIMAL on Postgres too

    status = cli("status", "--stale-after", "1000", "--json", "--warehouse", lock_name, env=env)
    assert status.returncode == 0, status.stderr
    assert {s["source"] for s in json.loads(status.stdout)["sources"]} == set(SOURCE_NAMES)
