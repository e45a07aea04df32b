"""The live terminal view: what a person sees when running the demo in a terminal
(under tmux, the screen captured mid-run and at the end), and that nothing changes
off a terminal."""

from __future__ import annotations

import io
import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from rich.console import Console

from pipelines.live import LiveView
from pipelines.runner import SOURCE_NAMES, SourceResult

ROOT = Path(__file__).resolve().parents[2]
TMUX = shutil.which("tmux")
STAGES = ("queued", "extract", "normalize", "load", "done", "failed", "skipped")


def screen_of(view: LiveView, width: int = 140) -> str:
    console = Console(file=io.StringIO(), width=width, force_terminal=False, color_system=None)
    console.print(view)
    return console.file.getvalue()


def line_of(screen: str, name: str) -> str:
    lines = [line for line in screen.splitlines() if re.search(rf"│ {re.escape(name)}\s", line)]
    assert len(lines) == 1, f"{name}: {lines}\n{screen}"
    return lines[0]


def test_the_view_follows_dlt_steps_and_the_runners_events(monkeypatch):
    view = LiveView(["retreaver", "loops"], console=Console(file=io.StringIO()))
    logger = logging.getLogger("marketing_etl")
    monkeypatch.setattr(logger, "handlers", [])
    view._live = None  # not started: fed by hand, rendered to a string
    from pipelines.live import _Handler

    handler = _Handler(view)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.info("source started", extra={"event": "source_started", "source": "retreaver"})
    collector = view.collector("retreaver")
    with collector("Extract retreaver"):
        collector.update("calls", 120)
        collector.update("Resources", 1, label="Completed")
    with collector("Normalize retreaver in 1796300908.3723295"):
        mid = screen_of(view)
    assert re.search(r"retreaver\s+│ normalize\s+│\s+120 │", line_of(mid, "retreaver")), mid
    assert "queued" in line_of(mid, "loops")
    logger.info("source loaded", extra={"event": "source_finished", "source": "retreaver", "status": "loaded", "rows": 130,
                                        "requests": 7, "throttled": 2, "seconds": 3.25})
    view.step("transforms", "built", "15 data tests passed")
    end = screen_of(view)
    assert re.search(r"retreaver\s+│ done\s+│\s+130 │\s+7 │\s+2 │\s+3\.2s", line_of(end, "retreaver")), end
    assert "15 data tests passed" in line_of(end, "transforms")
    # A backfill runs the same source once per window: one line each.
    logger.info("source started", extra={"event": "source_started", "source": "retreaver"})
    view.source_result(SourceResult("retreaver", "loaded", "5 rows in 1 tables", {"calls": 5}, {"requests": 1}, 0.5), ("2026-09-01", "2026-09-08"))
    assert "retreaver 2026-09-01..2026-09-08" in screen_of(view)
    assert not re.search(r"\d{10}\.\d+", end)  # no float load ids


def test_off_a_terminal_there_is_no_live_view(tmp_path):
    # stdout and stderr are pipes: plain lines only, no view, no terminal escapes.
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "dashboard", "--warehouse", str(tmp_path / "w.duckdb")],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    assert result.returncode == 3
    assert result.stdout.startswith(f"{tmp_path / 'w.dashboard.html'}  (")
    assert not re.search("[┏│\x1b]", result.stdout + result.stderr)


@pytest.mark.skipif(TMUX is None, reason="tmux is not installed (Debian: apt-get install tmux)")
def test_the_demo_in_a_terminal_shows_one_live_view_then_the_summary(tmp_path):
    # A tmux server of our own (-L): other sessions on the machine are never touched.
    tmux = [TMUX, "-L", f"etl-test-{uuid.uuid4().hex[:8]}"]
    warehouse = tmp_path / "demo.duckdb"
    command = (
        f"cd {shlex.quote(str(ROOT))} && {shlex.quote(sys.executable)} -m pipelines.cli demo --scale 0.05 "
        f"--warehouse {shlex.quote(str(warehouse))}; echo DEMO-EXIT=$?; sleep 600"
    )
    subprocess.run([*tmux, "new-session", "-d", "-s", "demo", "-x", "160", "-y", "60", command], check=True, env=os.environ)

    def screen() -> str:
        return subprocess.run([*tmux, "capture-pane", "-p", "-t", "demo", "-S", "-300"], capture_output=True, text=True).stdout

    try:
        deadline, mid = time.monotonic() + 300, None
        while time.monotonic() < deadline:
            shown = screen()
            if "DEMO-EXIT=" in shown:
                break
            if mid is None and re.search(r"│ \w+\s+│ (extract|normalize|load)\s", shown):
                mid = shown
            time.sleep(0.5)
        end = screen()
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)
    assert "DEMO-EXIT=0" in end, end[-3000:]
    # Mid-run: one line per source, each with its stage.
    assert mid is not None, "never saw a source extracting, normalizing or loading"
    for name in SOURCE_NAMES:
        assert re.search(rf"│ {name}\s+│ ({'|'.join(STAGES)})\s", mid), f"{name} has no stage line mid-run:\n{mid}"
    assert mid.count("┏") == 1, mid  # one view, not a block per source
    # At the end: the view became the run's summary table, then the demo's summary.
    for name in SOURCE_NAMES:
        assert re.search(rf"│ {name}\s+│ done\s+│\s+[\d,]+ │\s+[\d,]+ │\s+\d+ │\s+[\d.]+s", end), f"{name}:\n{end}"
    assert re.search(r"│ transforms\s+│ built\s", end) and re.search(r"│ publish\s+│ published\s", end)
    assert re.search(r"│ dashboard\s+│ written\s", end)
    assert end.count("┏") == 1, end
    assert not re.search(r"in \d{10}\.\d+", end)  # dlt's progress blocks (float load ids) are gone
    last = [line for line in end.splitlines() if line.strip() and "DEMO-EXIT" not in line][-2:]
    assert "dashboard" in last[0] and str(warehouse.with_name("demo.dashboard.html")) in last[0], last
