"""Run history (ops.runs), --json summaries, and what the logs show at each level."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import duckdb

from pipelines.runner import Runner


def cli(*args: str, env: dict[str, str], cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], capture_output=True, text=True, timeout=300, env=env, cwd=cwd)


def cli_env(sandbox, tmp_path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOURCES__")}
    env.update(sandbox.env())
    env.update({"DLT_DATA_DIR": str(tmp_path / "dlt"), "RUNTIME__REQUEST_BACKOFF_FACTOR": "0.05"})
    env.update(extra)
    return env


def runs(path, run_id: str | None = None) -> list[dict]:
    with duckdb.connect(str(path), read_only=True) as con:
        cursor = con.execute(
            "select * from ops.runs" + (" where run_id = ?" if run_id else "") + " order by finished_at, source",
            [run_id] if run_id else [],
        )
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, r)) for r in cursor.fetchall()]
    for row in rows:
        for key in ("rows", "cursor_before", "cursor_after", "schema_changes"):
            row[key] = json.loads(row[key]) if row[key] is not None else None
    return rows


def test_runs_table_after_a_full_load_then_a_no_op_run(sandbox, warehouse, tmp_path):
    env = cli_env(sandbox, tmp_path)
    first = cli("run", "--sources", "retreaver", "--no-transform", "--json", "--warehouse", str(warehouse.path), env=env)
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)  # --json: stdout is one JSON document, nothing else
    assert summary["exit_code"] == 0
    (row,) = runs(warehouse.path, summary["run_id"])
    assert row["source"] == "retreaver" and row["command"] == "run" and row["status"] == "loaded"
    assert row["started_at"] < row["finished_at"]
    assert row["rows"]["calls"] == warehouse.scalar("select count(*) from retreaver.calls")
    assert row["rows_total"] == sum(row["rows"].values())
    assert row["requests"] == len(sandbox.requests("retreaver")) > 0
    assert row["retries"] == row["throttled_429"] == 0 and row["error"] is None
    assert row["cursor_before"] == {}  # first run: no cursor yet
    newest = warehouse.scalar("select max(updated_at) from retreaver.calls")
    assert row["cursor_after"]["calls.updated_at"][:19] == newest.strftime("%Y-%m-%dT%H:%M:%S")
    assert "uuid" in row["schema_changes"]["calls"]  # the first load creates the tables
    assert summary["runs"][0]["rows"] == row["rows"] and summary["runs"][0]["requests"] == row["requests"]

    seq = sandbox.requests()[-1]["seq"]
    second = cli("run", "--sources", "retreaver", "--no-transform", "--json", "--warehouse", str(warehouse.path), env=env)
    assert second.returncode == 0, second.stderr
    (noop,) = runs(warehouse.path, json.loads(second.stdout)["run_id"])
    assert noop["status"] == "loaded"
    assert noop["cursor_before"] == row["cursor_after"]  # it started where the first run ended
    assert noop["cursor_after"] == noop["cursor_before"]  # and nothing newer arrived
    assert noop["schema_changes"] == {}
    assert noop["requests"] == len(sandbox.requests("retreaver", since=seq)) < row["requests"] / 4
    assert noop["rows"].get("calls", 0) < row["rows"]["calls"] / 10  # only the lag margin is re-read
    assert len(runs(warehouse.path)) == 2  # appended, never rewritten


def test_runs_table_after_a_partial_failure_counts_429s_and_keeps_secrets_out(sandbox, warehouse, tmp_path):
    sandbox.add_fault("429", api="retreaver", count=2, retry_after=0)
    env = cli_env(sandbox, tmp_path, SOURCES__LISTENLOOP__API_KEY="bad-token-4242")
    result = cli("run", "--sources", "listenloop,retreaver", "--no-transform", "--json", "--warehouse", str(warehouse.path), env=env)
    assert result.returncode == 1, result.stderr  # some sources failed
    summary = json.loads(result.stdout)
    assert summary["exit_code"] == 1
    by_source = {r["source"]: r for r in runs(warehouse.path, summary["run_id"])}
    failed, loaded = by_source["listenloop"], by_source["retreaver"]
    assert failed["status"] == "failed" and "401" in failed["error"]
    assert failed["rows_total"] == 0 and failed["cursor_after"] == failed["cursor_before"]
    assert loaded["status"] == "loaded" and loaded["error"] is None
    assert loaded["throttled_429"] == 2 and loaded["retries"] >= 2
    assert loaded["requests"] == len(sandbox.requests("retreaver"))
    with duckdb.connect(str(warehouse.path), read_only=True) as con:
        dump = str(con.execute("select * from ops.runs").fetchall())
    for text in (dump, result.stdout, result.stderr):
        assert "bad-token-4242" not in text


def test_logs_are_logfmt_off_a_terminal_quiet_is_silent_and_verbose_masks_secrets(sandbox, warehouse, tmp_path):
    env = cli_env(sandbox, tmp_path)
    secrets = [v for k, v in sandbox.env().items() if k.endswith(("API_KEY", "PASSWORD"))]
    assert secrets
    normal = cli("run", "--sources", "listenloop", "--no-transform", "--warehouse", str(warehouse.path), env=env)
    assert normal.returncode == 0, normal.stderr
    assert normal.stdout.startswith("loaded   listenloop")
    lines = [line for line in normal.stderr.splitlines() if line]
    assert lines and all(line.startswith("ts=") for line in lines), normal.stderr  # one logfmt line per event
    assert any("event=source_finished" in line and "source=listenloop" in line and "rows=" in line for line in lines)

    quiet = cli("run", "--sources", "listenloop", "--no-transform", "--quiet", "--warehouse", str(warehouse.path), env=env)
    assert quiet.returncode == 0 and quiet.stdout == "" and "level=info" not in quiet.stderr

    verbose = cli("run", "--sources", "listenloop", "--no-transform", "--verbose", "--warehouse", str(warehouse.path), env=env)
    assert verbose.returncode == 0
    assert "level=info" in verbose.stderr and "|[INFO]|" in verbose.stderr  # ours and dlt's
    for secret in secrets:
        assert secret not in verbose.stdout + verbose.stderr


def test_progress_on_a_terminal_comes_from_dlts_collector(sandbox, warehouse):
    from pipelines.logs import progress_factory

    screen = io.StringIO()
    progress = progress_factory("normal", terminal=True, stream=screen)
    assert progress is not None and progress_factory("normal", terminal=False) is None
    assert progress_factory("quiet", terminal=True) is None
    result = Runner(warehouse.path, ["listenloop"], progress=progress).run()
    assert result.sources[0].status == "loaded"
    shown = screen.getvalue()
    assert "campaigns" in shown and "listenloop" in shown, shown


def test_run_records_are_written_through_one_open_database(tmp_path, monkeypatch):
    """write_runs keeps the file open while dlt writes the few rows (dlt would open
    and close it ~4 times): every dlt connection after the load began sees the
    database as it was set just before."""
    from datetime import UTC, datetime

    import pipelines.warehouse
    from pipelines.ops import RunRecord, write_runs
    from tests.pipelines.conftest import MARKED_DEPTH, settings_seen_by_dlt_connections

    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt"))
    path = tmp_path / "w.duckdb"
    seen = settings_seen_by_dlt_connections(monkeypatch, path, pipelines.warehouse)
    now = datetime.now(UTC)
    write_runs(path, [RunRecord(run_id="r1", command="run", source=s, status="loaded", started_at=now, finished_at=now) for s in ("fx", "transforms")])
    assert len(seen) >= 2 and set(seen) == {MARKED_DEPTH}, seen
    assert [r["source"] for r in runs(path, "r1")] == ["fx", "transforms"]
