"""The writer's lock and the status readers' lock (pipelines/lock.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import duckdb
import pytest

from pipelines.lock import WarehouseBusy, warehouse_lock, warehouse_read_lock


def test_a_run_waits_for_a_status_reader_then_proceeds(tmp_path):
    warehouse = tmp_path / "w.duckdb"
    reader = warehouse_read_lock(warehouse).__enter__()
    threading.Timer(1.0, reader.__exit__).start()
    started = time.monotonic()
    with warehouse_lock(warehouse, readers_wait_seconds=20):
        waited = time.monotonic() - started
        with pytest.raises(WarehouseBusy, match="being written by a run"):
            with warehouse_read_lock(warehouse):
                pass
    assert 0.9 < waited < 10
    with warehouse_read_lock(warehouse), warehouse_read_lock(warehouse):  # readers share
        pass


def test_a_reader_that_never_lets_go_makes_the_run_give_up_and_release_its_lock(tmp_path):
    warehouse = tmp_path / "w.duckdb"
    with warehouse_read_lock(warehouse):
        with pytest.raises(WarehouseBusy, match="held open by `marketing-etl status`"):
            with warehouse_lock(warehouse, readers_wait_seconds=0.3):
                pass
    with warehouse_lock(warehouse, readers_wait_seconds=0.3):  # the writer's lock was released
        pass


def test_status_during_a_run_exits_at_once_saying_so(tmp_path):
    warehouse = tmp_path / "w.duckdb"
    duckdb.connect(str(warehouse)).close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOURCES__")}
    with warehouse_lock(warehouse):
        started = time.monotonic()
        busy = subprocess.run(
            [sys.executable, "-m", "pipelines.cli", "status", "--warehouse", str(warehouse)],
            capture_output=True, text=True, timeout=60, env=env,
        )
    assert busy.returncode == 3 and "being written by a run" in busy.stderr
    assert time.monotonic() - started < 30
