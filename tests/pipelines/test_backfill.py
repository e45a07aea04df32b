"""`marketing-etl backfill`: chunked, idempotent, and the hourly runs' cursors stay put."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta

from pipelines.backfill import chunks
from tests.conftest import TEST_NOW

CALL_COLUMNS = "uuid, updated_at, created_at, revenue, payout, converted, tag_utm_campaign"


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], capture_output=True, text=True, timeout=300, env=env)


def env_for(sandbox, tmp_path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOURCES__")}
    env.update(sandbox.env())
    env.update({"DLT_DATA_DIR": str(tmp_path / "dlt"), "RUNTIME__REQUEST_BACKOFF_FACTOR": "0.05"})
    return env


def test_chunks_cover_the_window_exactly_once():
    start = TEST_NOW.date() - timedelta(days=10)
    parts = list(chunks(start, start + timedelta(days=10), 4))
    assert [(b - a).days for a, b in parts] == [4, 4, 2]
    assert parts[0][0] == start and parts[-1][1] == start + timedelta(days=10)
    assert all(parts[i][1] == parts[i + 1][0] for i in range(len(parts) - 1))


def test_sources_without_history_and_bad_windows_are_refused(sandbox, tmp_path):
    env = env_for(sandbox, tmp_path)
    warehouse = str(tmp_path / "w.duckdb")
    for source in ("listenloop", "loops"):
        refused = cli("backfill", "--source", source, "--start", "2026-01-01", "--end", "2026-01-08", "--warehouse", warehouse, env=env)
        assert refused.returncode == 2 and f"{source} cannot be backfilled" in refused.stderr
    backwards = cli("backfill", "--source", "retreaver", "--start", "2026-01-08", "--end", "2026-01-01", "--warehouse", warehouse, env=env)
    assert backwards.returncode == 2 and "must be before" in backwards.stderr
    garbled = cli("backfill", "--source", "retreaver", "--start", "January", "--end", "2026-01-01", "--warehouse", warehouse, env=env)
    assert garbled.returncode == 2 and "YYYY-MM-DD" in garbled.stderr
    assert not sandbox.requests()  # refused before any request


def test_a_backfill_merges_in_chunks_leaves_cursors_alone_and_changes_nothing_when_re_run(sandbox, warehouse, tmp_path):
    env = env_for(sandbox, tmp_path)
    path = str(warehouse.path)
    normal = cli("run", "--sources", "retreaver", "--no-transform", "--json", "--warehouse", path, env=env)
    assert normal.returncode == 0, normal.stderr
    cursor = json.loads(normal.stdout)["runs"][0]["cursor_after"]
    before = warehouse.query(f"select {CALL_COLUMNS} from retreaver.calls order by uuid")
    reports_before = warehouse.query("select * exclude (_dlt_load_id, _dlt_id) from retreaver.report_daily order by day")

    end = TEST_NOW.date() - timedelta(days=2)
    start = end - timedelta(days=10)
    seq = sandbox.requests()[-1]["seq"]
    first = cli("backfill", "--source", "retreaver", "--start", start.isoformat(), "--end", end.isoformat(),
                "--chunk-days", "4", "--no-transform", "--json", "--warehouse", path, env=env)
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    windows = [(r["window_start"], r["window_end"]) for r in summary["runs"]]
    assert windows == [(a.isoformat(), b.isoformat()) for a, b in chunks(start, end, 4)]
    assert all(r["status"] == "loaded" and r["command"] == "backfill" for r in summary["runs"])
    # The hourly runs' cursors did not move.
    assert all(r["cursor_before"] == r["cursor_after"] == cursor for r in summary["runs"])
    loaded = sum(r["rows"].get("calls", 0) for r in summary["runs"])
    in_window = warehouse.scalar(
        "select count(*) from retreaver.calls where created_at >= ?::date and created_at < ?::date", [start.isoformat(), end.isoformat()]
    )
    assert loaded == in_window > 0  # every call of the window, re-read once
    # What the sandbox saw: the window's call pages, its reports, nothing from the catalogue.
    seen = sandbox.requests("retreaver", since=seq)
    calls = [r for r in seen if "/calls" in r["path"]]
    assert calls and all("created_at_start" in r["query"] for r in calls)
    assert not [r for r in seen if any(f"/{name}.json" in r["path"] for name in ("campaigns", "affiliates", "targets", "numbers"))]

    # Merged, not appended: the same rows as the normal run loaded, no duplicates...
    assert warehouse.query(f"select {CALL_COLUMNS} from retreaver.calls order by uuid") == before
    assert warehouse.query("select * exclude (_dlt_load_id, _dlt_id) from retreaver.report_daily order by day") == reports_before
    # ...and again on a re-run.
    again = cli("backfill", "--source", "retreaver", "--start", start.isoformat(), "--end", end.isoformat(),
                "--chunk-days", "4", "--no-transform", "--warehouse", path, env=env)
    assert again.returncode == 0, again.stderr
    assert warehouse.query(f"select {CALL_COLUMNS} from retreaver.calls order by uuid") == before
    assert warehouse.scalar("select count(*) - count(distinct uuid) from retreaver.calls") == 0

    # The next hourly run is still incremental from the untouched cursor.
    seq = sandbox.requests()[-1]["seq"]
    after = cli("run", "--sources", "retreaver", "--no-transform", "--json", "--warehouse", path, env=env)
    assert after.returncode == 0, after.stderr
    assert json.loads(after.stdout)["runs"][0]["cursor_before"] == cursor
    # A full walk of the calls would be dozens of pages; from the cursor it is one or two.
    call_pages = [r for r in sandbox.requests("retreaver", since=seq) if r["path"].endswith("/calls.json")]
    assert 1 <= len(call_pages) <= 3


def test_an_end_date_in_the_configuration_fails_normal_runs_instead_of_freezing_them(sandbox, warehouse, monkeypatch):
    # dlt would inject it into every run, which would then re-read one window forever.
    monkeypatch.setenv("SOURCES__RETREAVER__END_DATE", "2026-01-01")
    (result,) = warehouse.run("retreaver").sources
    assert result.status == "failed" and "SOURCES__RETREAVER__END_DATE is set" in result.message
    assert not sandbox.requests("retreaver")
