"""Concurrency (docs/reliability.md): while `marketing-etl run` writes, `status` and
`backfill` are started and a BI reader holds the serving file and keeps querying.
Nothing blocks forever (each answers within a bound, the run finishes), nothing
corrupts (the reader's answers stay whole, the warehouse equals the sandbox truth).

What existed already: tests/pipelines/test_lock.py (the locks on their own, status
against a held lock) and test_full_run.py (a reader holding the serving file through
a full run). Added here: all three at once against a real run, several times over.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta

import duckdb

from pipelines.publish import serving_path
from sandbox.control import SandboxControl
from tests.conftest import TEST_NOW, TEST_SEED
from tests.sources import test_retreaver
from tests.sources.conftest import Warehouse

SCALE = 0.02
SOURCES = "listenloop,retreaver,marin_social,fx"  # fx: the marts convert money with its rates
ROUNDS, LONG_ROUNDS = 1, 4
BOUND = 60  # seconds any side command may take while a run writes
# A status and a backfill start at most this often: a few pairs land in each of the
# run's phases, and the pairs do not slow the run they probe (started back to
# back they were ~12 per run, most of the test's CPU).
PROBE_EVERY = 2.5

READER = """
import duckdb, sys
con = duckdb.connect(sys.argv[1], read_only=True)
query = "select count(*), sum(calls) from marts.marketing_daily"
for line in sys.stdin:  # one query per line received, on the connection opened at the start
    print(con.execute(query).fetchone(), flush=True)
"""


def cli(env: dict[str, str], *args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pipelines.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, **kwargs)


def test_status_backfill_and_a_bi_reader_during_a_run_neither_block_nor_corrupt(sandbox_server, tmp_path, request):
    control = SandboxControl(sandbox_server.base_url)
    control.reset(seed=TEST_SEED, scale=SCALE, now=TEST_NOW.isoformat())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "RUNTIME__"))}
    env.update(control.env())
    env.update({"DLT_DATA_DIR": str(tmp_path / "dlt"), "RUNTIME__REQUEST_BACKOFF_FACTOR": "0.05"})
    warehouse = tmp_path / "w.duckdb"
    first = cli(env, "run", "--sources", SOURCES, "--warehouse", str(warehouse))
    out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    serving = serving_path(warehouse)

    reader = subprocess.Popen([sys.executable, "-c", READER, str(serving)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        def read() -> str:
            reader.stdin.write("\n")
            reader.stdin.flush()
            return reader.stdout.readline().strip()

        before = read()
        assert before.startswith("(") and not before.startswith("(0,")
        rounds = LONG_ROUNDS if request.config.getoption("--long") else ROUNDS
        side_runs, codes, next_probe = 0, {}, 0.0
        for _ in range(rounds):
            control.advance(1)  # new data for the run
            started = time.monotonic()
            run = cli(env, "run", "--sources", SOURCES, "--warehouse", str(warehouse))
            time.sleep(1.0)  # the run holds the lock by now
            while run.poll() is None and time.monotonic() - started < 600:
                time.sleep(max(0.0, next_probe - time.monotonic()))
                if run.poll() is not None:
                    break
                t0 = time.monotonic()
                next_probe = t0 + PROBE_EVERY
                status = cli(env, "status", "--warehouse", str(warehouse))
                backfill = cli(env, "backfill", "--source", "retreaver", "--start", (TEST_NOW.date() - timedelta(days=5)).isoformat(),
                               "--end", TEST_NOW.date().isoformat(), "--warehouse", str(warehouse))
                s_out, s_err = status.communicate(timeout=BOUND)
                b_out, b_err = backfill.communicate(timeout=BOUND)
                assert time.monotonic() - t0 < BOUND
                side_runs += 2
                for name, proc in (("status", status), ("backfill", backfill)):
                    codes[f"{name} exit {proc.returncode}"] = codes.get(f"{name} exit {proc.returncode}", 0) + 1
                if run.poll() is None or status.returncode == 3:
                    # Refused at once, saying why (or, if the run ended meanwhile, ran normally).
                    assert status.returncode in (3, 0, 5), s_err
                if backfill.returncode == 3:
                    assert "being written by" in b_err, b_err
                else:
                    assert backfill.returncode == 0, b_err  # the run ended first: the backfill ran whole
                assert read() == before  # the reader's connection sees its whole, old copy
            out, err = run.communicate(timeout=600)
            assert run.returncode == 0, err
            assert "published" in out
        assert side_runs >= 4 * rounds, f"only {side_runs} side commands ran during {rounds} runs: nothing was probed"
        assert read() == before
    finally:
        reader.kill()
        reader.wait()
    # A new connection sees the newest build, and the raw data equals the truth.
    with duckdb.connect(str(serving), read_only=True) as con:
        after = str(con.execute("select count(*), sum(calls) from marts.marketing_daily").fetchone())
    assert after != before
    test_retreaver.assert_equals_truth(Warehouse(warehouse), control)
    print(f"\nconcurrency: {rounds} runs with {side_runs} status/backfill commands ({codes}) and a reader during them; none blocked, none corrupted")
