"""Crash consistency (docs/reliability.md): SIGKILL `marketing-etl run` at random
points, restart, repeat; then one clean run. The raw tables, the dlt state (cursors)
and the marts must equal those of a never-interrupted run against the same sandbox
state, compared row by row (not counts); the serving file must be readable and
whole after every kill; every killed run must show in ``ops.runs``.

Each kill waits for the line that opens its phase (extract, normalize/load,
transforms, publish, writing ops.runs), then a random delay drawn within that
phase's length in the reference run. CI: 5 kills (one per phase); ``--long``: 20.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipelines.ops import cursor_summary, marker_path
from pipelines.publish import serving_path
from pipelines.runner import SOURCE_NAMES
from pipelines.warehouse import PIPELINE_PREFIX
from sandbox.control import SandboxControl
from tests.conftest import TEST_NOW, TEST_SEED

SCALE = 0.02
KILLS, LONG_KILLS = 5, 20  # one per phase; --long: four per phase
# Columns that hold the moment of a load, not data: they differ between any two runs.
LOAD_TIME_COLUMNS = {"_dlt_load_id", "_dlt_id", "_dlt_parent_id", "_dlt_root_id", "looked_up_at", "snapshot_at", "loaded_at", "built_at"}
# Appended once per run by design (one snapshot of every campaign per run): compared as distinct rows.
PER_RUN_TABLES = {"listenloop.campaign_snapshots"}


def env_for(control: SandboxControl, root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "DESTINATION__", "RUNTIME__"))}
    env.update(control.env())
    env.update({"DLT_DATA_DIR": str(root / "dlt"), "RUNTIME__REQUEST_BACKOFF_FACTOR": "0.05", "PYTHONUNBUFFERED": "1"})
    return env


def start_run(warehouse: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "run", "--warehouse", str(warehouse)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True,
    )


def snapshot(warehouse: Path) -> dict[str, list[tuple]]:
    """Every raw and mart table's rows, load-time columns left out, sorted."""
    out: dict[str, list[tuple]] = {}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables where table_type = 'BASE TABLE' "
            "and table_schema not in ('ops') and table_schema not like '%_staging' and not starts_with(table_name, '_dlt')"
        ).fetchall()
        for schema, table in tables:
            columns = [c for (c,) in con.execute(
                "select column_name from information_schema.columns where table_schema = ? and table_name = ? order by column_name",
                [schema, table]).fetchall() if c not in LOAD_TIME_COLUMNS]
            name = f"{schema}.{table}"
            select = ", ".join(f'"{c}"' for c in columns)
            distinct = "distinct " if name in PER_RUN_TABLES else ""
            rows = con.execute(f'select {distinct}{select} from "{schema}"."{table}"').fetchall()
            out[name] = sorted(rows, key=repr)
    return out


def cursors(root: Path) -> dict[str, Any]:
    """The cursors of every source's dlt state (pipelines/ops.cursor_summary)."""
    out = {}
    for name in SOURCE_NAMES:
        state_file = root / "dlt" / "pipelines" / f"{PIPELINE_PREFIX}{name}" / "state.json"
        if state_file.exists():
            out[name] = cursor_summary(json.loads(state_file.read_text()), name)
    return out


def assert_serving_file_whole(warehouse: Path) -> int:
    """The serving file, if any, opens and every mart reads in full."""
    serving = serving_path(warehouse)
    if not serving.exists():
        return 0
    with duckdb.connect(str(serving), read_only=True) as con:
        tables = con.execute("select table_schema, table_name from information_schema.tables where table_schema = 'marts'").fetchall()
        assert tables, "a serving file without marts"
        return sum(con.execute(f'select count(*) from "{s}"."{t}"').fetchone()[0] for s, t in tables)


class Watched:
    """A run whose output lines are read as they come, each with its arrival time."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc, self.lines, self.t0 = proc, [], time.monotonic()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._read, args=(pipe, name), daemon=True)
                         for pipe, name in ((proc.stdout, "out"), (proc.stderr, "err"))]
        for t in self._threads:
            t.start()

    def _read(self, pipe: Any, name: str) -> None:
        for line in pipe:
            with self._lock:
                self.lines.append((time.monotonic() - self.t0, name, line.rstrip("\n")))

    def when(self, test: Callable[[str, str], bool]) -> float | None:
        with self._lock:
            return next((t for t, name, line in self.lines if test(name, line)), None)

    def wait_for(self, test: Callable[[str, str], bool], timeout: float = 600) -> float | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.when(test)
            if found is not None or self.proc.poll() is not None:
                return found if found is not None else self.when(test)
            time.sleep(0.02)
        return None

    def finish(self, timeout: float = 600) -> tuple[int, str, str]:
        code = self.proc.wait(timeout=timeout)
        for t in self._threads:
            t.join(timeout=10)
        with self._lock:
            return code, "\n".join(text for _, n, text in self.lines if n == "out"), "\n".join(text for _, n, text in self.lines if n == "err")


# Where a kill lands, by the line that starts the phase (stdout's lines come in
# order: the sources' lines once every source has loaded, then the transforms',
# then "published"; stderr logs each source's start and end).
PHASES: dict[str, Callable[[str, str], bool]] = {
    "extract": lambda n, line: n == "err" and "source_started" in line,
    "normalize/load": lambda n, line: n == "err" and "source_finished" in line,
    "transforms": lambda n, line: n == "out" and line.startswith(("loaded", "failed")),
    "publish": lambda n, line: n == "out" and line.startswith(("built", "tests_failed")),
    "ops.runs": lambda n, line: n == "out" and line.startswith("published"),
}


def phase_spans(ref: Watched, end: float) -> dict[str, float]:
    """How long each phase lasted in the reference run (the kill's random delay range)."""
    starts = [ref.when(test) for test in PHASES.values()]
    assert all(t is not None for t in starts), ref.lines
    bounds = [*starts, end]
    spans = {name: max(0.05, bounds[i + 1] - bounds[i]) for i, name in enumerate(PHASES)}
    spans["extract"] = min(spans["extract"], 5.0)  # the first source's extract, not the whole wait
    return spans


@pytest.fixture
def world(sandbox_server, tmp_path):
    control = SandboxControl(sandbox_server.base_url)
    control.reset(seed=TEST_SEED, scale=SCALE, now=TEST_NOW.isoformat())
    return control


def test_killed_runs_then_a_clean_run_equal_a_never_interrupted_run(world, tmp_path, request):
    kills = LONG_KILLS if request.config.getoption("--long") else KILLS
    ref_root, crash_root = tmp_path / "reference", tmp_path / "crashed"
    ref_root.mkdir(), crash_root.mkdir()
    ref_wh, crash_wh = ref_root / "w.duckdb", crash_root / "w.duckdb"

    ref = Watched(start_run(ref_wh, env_for(world, ref_root)))
    code, _, err = ref.finish()
    duration = time.monotonic() - ref.t0
    assert code == 0, err
    spans = phase_spans(ref, duration)

    rng = random.Random(f"kills-{TEST_SEED}")
    env = env_for(world, crash_root)
    report, killed_ids, interrupted_notices, late = [], [], 0, 0
    for i in range(kills):
        target = list(PHASES)[i % len(PHASES)]
        delay = rng.uniform(0, spans[target])
        run = Watched(start_run(crash_wh, env))
        seen = run.wait_for(PHASES[target])
        if seen is not None:
            time.sleep(delay)
        marker = marker_path(crash_wh)
        run_id = json.loads(marker.read_text())["run_id"] if marker.exists() else None
        os.killpg(run.proc.pid, signal.SIGKILL)  # the run and anything it started
        code, out, err = run.finish(timeout=60)
        if code == -signal.SIGKILL and run_id:
            killed_ids.append(run_id)
        late += code == -signal.SIGKILL and run_id is None  # killed after its marker was cleared: a finished run
        interrupted_notices += "was interrupted; recorded in ops.runs" in err
        report.append((target, round(delay, 2), "killed" if code == -signal.SIGKILL else f"finished ({code})"))
        assert_serving_file_whole(crash_wh)

    code, out, err = Watched(start_run(crash_wh, env)).finish()
    assert code == 0, err
    interrupted_notices += "was interrupted; recorded in ops.runs" in err
    serving_rows = assert_serving_file_whole(crash_wh)
    print(f"\ncrash consistency: reference run {duration:.0f} s, phases (s) { {k: round(v, 1) for k, v in spans.items()} }; "
          f"{kills} kills (phase, s into it, outcome): {report}")

    # Every killed run is in ops.runs: as `interrupted`, or with its own rows if it
    # was killed after writing them.
    with duckdb.connect(str(crash_wh), read_only=True) as con:
        recorded = dict(con.execute("select run_id, string_agg(distinct status, ',') from ops.runs group by 1").fetchall())
    for run_id in killed_ids:
        assert run_id in recorded, f"killed run {run_id} not in ops.runs"
    assert interrupted_notices == sum("interrupted" in recorded[r] for r in killed_ids)
    # ... and no run that finished lost its own rows (the runs killed mid-run excepted,
    # every invocation has its run_id in ops.runs).
    finished = sum(1 for *_, outcome in report if outcome != "killed")
    assert len(recorded) == len(killed_ids) + finished + late + 1

    expected, got = snapshot(ref_wh), snapshot(crash_wh)
    assert sorted(got) == sorted(expected)
    for table in expected:
        assert got[table] == expected[table], f"{table}: {len(got[table])} rows vs {len(expected[table])} in the reference"
    assert cursors(crash_root) == cursors(ref_root)
    rows = sum(len(v) for v in expected.values())
    print(f"crash consistency: {len(expected)} tables, {rows} rows compared equal; {len(killed_ids)} killed runs recorded "
          f"({interrupted_notices} as interrupted, {late} killed after finishing); serving file {serving_rows} mart rows readable")


def test_a_killed_run_is_recorded_as_interrupted_by_the_next_command(tmp_path):
    """What the marker holds becomes ``interrupted`` rows, once; a marker whose run
    did write its rows (killed between the two) adds nothing."""
    from pipelines.ops import start_marker

    warehouse = tmp_path / "w.duckdb"
    duckdb.connect(str(warehouse)).close()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "RUNTIME__"))}
    env["DLT_DATA_DIR"] = str(tmp_path / "dlt")
    start_marker(warehouse, "deadbeef00000001", "run", ["retreaver", "loops", "transforms"])
    cmd = [sys.executable, "-m", "pipelines.cli", "transform", "--warehouse", str(warehouse)]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert "run deadbeef00000001 (run, started" in first.stderr and "recorded in ops.runs as interrupted" in first.stderr
    assert not marker_path(warehouse).exists()
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute("select source, status, command, error from ops.runs where run_id = 'deadbeef00000001' order by source").fetchall()
    assert [r[:3] for r in rows] == [(s, "interrupted", "run") for s in ("loops", "retreaver", "transforms")]
    assert all("ended without finishing" in r[3] for r in rows)
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert "interrupted" not in again.stderr  # recorded once
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("select count(*) from ops.runs where status = 'interrupted'").fetchone()[0] == 3


def test_a_kill_between_normalize_commit_and_cleanup_does_not_wedge_the_source(tmp_path, monkeypatch):
    """The window the 20-kill run found: dlt renames the normalized package into
    place, then deletes the extracted copy; killed between the two, every later
    normalize failed ("Directory not empty") until someone deleted files by hand."""
    import shutil as sh

    import dlt

    from pipelines.warehouse import finish_interrupted_normalize, make_pipeline

    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt"))
    pipeline = make_pipeline("crashprobe", tmp_path / "w.duckdb")
    rows = dlt.resource([{"id": i} for i in range(5)], name="items", primary_key="id", write_disposition="merge")
    pipeline.extract(rows)
    (load_id,) = pipeline.list_extracted_load_packages()
    kept = tmp_path / "extracted_copy"
    sh.copytree(Path(pipeline.working_dir) / "normalize" / "extracted" / load_id, kept)
    pipeline.normalize()
    # The kill: the committed package is in load/normalized, the extracted copy still there.
    sh.copytree(kept, Path(pipeline.working_dir) / "normalize" / "extracted" / load_id)
    finish_interrupted_normalize(pipeline)
    pipeline.normalize()
    pipeline.load().raise_on_failed_jobs()
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        assert con.execute("select count(*), count(distinct id) from crashprobe.items").fetchone() == (5, 5)
