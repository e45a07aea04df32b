"""One live view of a run on a terminal (``rich``), instead of dlt's progress blocks.

A line per source: stage (queued, extract, normalize, load, done, failed,
skipped), rows, requests, 429s and elapsed time; then the transforms, the publish
and the dashboard. When the run ends the view stays on screen as its summary table.

Fed from three places, none of them a change to the runner:

* a dlt progress collector per source pipeline (``collector(name)``, given to the
  Runner as its ``progress`` factory): dlt names every step it starts
  (``Extract retreaver``, ``Normalize retreaver in <load id>``, ``Load ...``) and
  counts the rows it extracts;
* the runner's ``source_started`` / ``source_finished`` log records (a logging
  handler that also prints every other record above the view);
* the request counters of each source's HTTP client (``stats_for``), read at each
  refresh.

Used only on a terminal and not with ``--quiet``; elsewhere the logfmt lines stay
exactly as they were (pipelines/logs.py).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from dlt.common.runtime.collector_base import Collector
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from pipelines.logs import LOGGER, HumanFormatter

STAGE_STYLE = {
    "queued": "dim",
    "extract": "yellow",
    "normalize": "yellow",
    "load": "yellow",
    "running": "yellow",
    "done": "green",
    "built": "green",
    "published": "green",
    "written": "green",
    "failed": "bold red",
    "tests_failed": "bold red",
    "config_error": "bold red",
    "skipped": "dim",
}
RUNNING = {"extract", "normalize", "load", "running"}


@dataclass
class Row:
    name: str
    label: str
    stage: str = "queued"
    note: str = ""
    rows: int = 0
    requests: int | None = None
    throttled: int | None = None
    started: float | None = None
    seconds: float | None = None
    counters: dict[str, int] = field(default_factory=dict)


class _SourceCollector(Collector):
    """dlt's progress hooks for one source's pipeline, reported to the view."""

    def __init__(self, view: LiveView, name: str) -> None:
        self.view, self.name, self.step = view, name, ""

    def update(self, name: str, inc: int = 1, total: Any = None, inc_total: Any = None, message: Any = None, label: Any = None) -> None:
        # While extracting, dlt counts items per resource; "Resources" counts resources.
        if self.step.startswith("Extract") and name != "Resources" and not label:
            self.view.add_rows(self.name, inc)

    def _start(self, step: str) -> None:
        stage = step.split(" ", 1)[0].lower()
        if stage in ("extract", "normalize", "load"):
            self.view.stage(self.name, stage)

    def _stop(self) -> None:
        if self.step.startswith("Extract"):
            # Normalize and load wait for the warehouse's single writer.
            self.view.stage(self.name, "extract", note="extracted, waiting for the loader")


class _Handler(logging.Handler):
    """Turns the runner's source events into view updates; prints every other record above the view."""

    def __init__(self, view: LiveView) -> None:
        super().__init__()
        self.view = view
        self.setFormatter(HumanFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            event = getattr(record, "event", None)
            source = getattr(record, "source", None)
            if event == "source_started" and source:
                self.view.started(source)
            elif event == "source_finished" and source:
                self.view.finished(
                    source, getattr(record, "status", ""), getattr(record, "rows", 0), getattr(record, "requests", None),
                    getattr(record, "throttled", None), getattr(record, "seconds", None), getattr(record, "error", ""),
                )
                if record.levelno < logging.WARNING:
                    return  # the view shows it; warnings (failures) are printed too
            if event in ("source_started",):
                return
            self.view.console.print(Text(self.format(record)), highlight=False)
        except Exception:  # noqa: BLE001 - a display problem must never break a run
            self.handleError(record)


class LiveView:
    def __init__(self, names: list[str], console: Console | None = None, title: str = "marketing-etl") -> None:
        self.console = console or Console(stderr=True)
        self.title = title
        self._lock = threading.RLock()
        self._rows: list[Row] = [Row(n, n) for n in names]
        self._steps: list[Row] = []
        self._live: Live | None = None
        self._handlers: list[logging.Handler] = []
        self._started = time.monotonic()

    # -------------------------------------------------------------- lifecycle
    def start(self) -> LiveView:
        logger = logging.getLogger(LOGGER)
        self._handlers = list(logger.handlers)
        for handler in self._handlers:
            logger.removeHandler(handler)
        logger.addHandler(_Handler(self))
        # Prints to stdout land above the view only when stdout is this terminal too;
        # piped (``--json | jq``), stdout is left alone.
        self._live = Live(
            self, console=self.console, refresh_per_second=4, transient=False,
            redirect_stdout=sys.stdout.isatty(), redirect_stderr=True,
        )
        self._live.start()
        return self

    def stop(self) -> None:
        if self._live is None:
            return
        live, self._live = self._live, None
        live.stop()
        logger = logging.getLogger(LOGGER)
        for handler in list(logger.handlers):
            if isinstance(handler, _Handler):
                logger.removeHandler(handler)
        for handler in self._handlers:
            logger.addHandler(handler)

    def collector(self, name: str) -> Collector:
        """The Runner's ``progress`` factory."""
        return _SourceCollector(self, name)

    # -------------------------------------------------------------- updates
    def _current(self, name: str, new: bool = False) -> Row:
        """The row of ``name``'s current run (backfill runs a source once per window)."""
        rows = [r for r in self._rows if r.name == name]
        if not rows:
            row = Row(name, name)
            self._rows.append(row)
            return row
        row = rows[-1]
        if new and row.stage not in ("queued",):
            row = Row(name, name)
            self._rows.insert(self._rows.index(rows[-1]) + 1, row)
        return row

    def started(self, name: str) -> None:
        with self._lock:
            row = self._current(name, new=True)
            row.stage, row.started, row.note = "extract", time.monotonic(), ""

    def stage(self, name: str, stage: str, note: str = "") -> None:
        with self._lock:
            row = self._current(name)
            row.stage, row.note = stage, note
            if row.started is None:
                row.started = time.monotonic()

    def add_rows(self, name: str, inc: int) -> None:
        with self._lock:
            self._current(name).rows += int(inc or 0)

    def finished(self, name: str, status: str, rows: Any, requests: Any, throttled: Any, seconds: Any, error: Any = "") -> None:
        with self._lock:
            row = self._current(name)
            row.stage = {"loaded": "done"}.get(status, status)
            row.rows = int(rows or 0)
            row.requests, row.throttled = requests, throttled
            row.seconds = float(seconds) if seconds is not None else None
            row.note = str(error or "")

    def source_result(self, result: Any, window: tuple[str, str] | None = None) -> None:
        """The runner's final word on a source (and, in a backfill, its window)."""
        with self._lock:
            row = self._current(result.name)
            stats = result.requests or {}
            row.stage = {"loaded": "done"}.get(result.status, result.status)
            row.rows = sum(result.rows.values())
            row.requests, row.throttled = stats.get("requests", 0), stats.get("throttled", 0)
            row.seconds = result.seconds
            row.note = result.message
            if window:
                row.label = f"{result.name} {window[0]}..{window[1]}"

    def step(self, name: str, stage: str, note: str = "") -> None:
        """Transforms, publish, dashboard: a row each, after the sources."""
        with self._lock:
            row = next((r for r in self._steps if r.name == name), None)
            if row is None:
                row = Row(name, name, started=time.monotonic())
                self._steps.append(row)
            if stage not in RUNNING and row.started is not None and row.seconds is None:
                row.seconds = time.monotonic() - row.started
            row.stage, row.note = stage, note

    # -------------------------------------------------------------- rendering
    def __rich__(self) -> Any:
        from sources._shared.http import stats_for

        with self._lock:
            table = Table(title=f"{self.title}  ({time.monotonic() - self._started:.0f}s)", title_justify="left", expand=False)
            for column, justify in (("source", "left"), ("stage", "left"), ("rows", "right"), ("requests", "right"),
                                    ("429s", "right"), ("elapsed", "right"), ("", "left")):
                table.add_column(column, justify=justify, no_wrap=column != "")
            for row in self._rows:
                if row.stage in RUNNING:
                    stats = stats_for(row.name)
                    row.requests, row.throttled = stats.get("requests", 0), stats.get("throttled", 0)
                table.add_row(*self._cells(row))
            if self._steps:
                table.add_section()
                for row in self._steps:
                    table.add_row(*self._cells(row, counters=False))
            return Group(table)

    def _cells(self, row: Row, counters: bool = True) -> list[Any]:
        if row.seconds is not None:
            elapsed = f"{row.seconds:.1f}s"
        elif row.started is not None:
            elapsed = f"{time.monotonic() - row.started:.0f}s"
        else:
            elapsed = ""
        num = lambda v: "" if v is None or not counters else f"{int(v):,}"  # noqa: E731
        rows = num(row.rows) if row.started is not None or row.seconds is not None else ""
        return [
            row.label,
            Text(row.stage, style=STAGE_STYLE.get(row.stage, "")),
            rows,
            num(row.requests),
            num(row.throttled),
            elapsed,
            Text(row.note, style="red" if row.stage in ("failed", "tests_failed", "config_error") else "dim"),
        ]
