"""Run history: one row per source (and one for the transforms) per invocation, in ``ops.runs``.

Written through dlt like every other table, so it lands in whichever destination
the warehouse is (DuckDB by default) and is queried with the same SQL. The rows
are written at the end of an invocation, after the transforms, in one small load.

A process killed mid-run (SIGKILL, OOM, a reboot) cannot write its rows, so every
writing command leaves a marker beside the warehouse while it runs
(``<warehouse>.running.json``: run_id, command, sources, pid, started_at) and
removes it once its rows are written. The next command to take the warehouse's
lock finds a leftover marker and first records that run as ``interrupted`` (one
row per source it was running), so a killed run is never invisible.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dlt

OPS_DATASET = "ops"
RUNS_TABLE = "runs"

# Types pinned so an all-NULL column (no error yet, no window) is still created, and
# the JSON columns stay JSON rather than child tables.
RUNS_COLUMNS: dict[str, dict[str, Any]] = {
    "run_id": {"data_type": "text", "nullable": False},
    "command": {"data_type": "text"},
    "source": {"data_type": "text", "nullable": False},
    "status": {"data_type": "text"},
    "started_at": {"data_type": "timestamp", "timezone": True},
    "finished_at": {"data_type": "timestamp", "timezone": True},
    "seconds": {"data_type": "double"},
    "rows_total": {"data_type": "bigint"},
    "rows": {"data_type": "json"},
    "requests": {"data_type": "bigint"},
    "retries": {"data_type": "bigint"},
    "throttled_429": {"data_type": "bigint"},
    "server_errors_5xx": {"data_type": "bigint"},
    "connection_errors": {"data_type": "bigint"},
    "skipped_entities": {"data_type": "bigint"},
    "skipped": {"data_type": "json"},
    "cursor_before": {"data_type": "json"},
    "cursor_after": {"data_type": "json"},
    "schema_changes": {"data_type": "json"},
    "window_start": {"data_type": "date"},
    "window_end": {"data_type": "date"},
    "error": {"data_type": "text"},
}


def new_run_id() -> str:
    return uuid.uuid4().hex[:16]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class RunRecord:
    run_id: str
    command: str
    source: str
    status: str  # loaded | failed | skipped (sources); built | skipped | failed | tests_failed (transforms); interrupted (a killed run, recorded by the next)
    started_at: datetime
    finished_at: datetime
    seconds: float = 0.0
    rows_total: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    retries: int = 0
    throttled_429: int = 0
    server_errors_5xx: int = 0
    connection_errors: int = 0
    # Per-entity answers (one email, one campaign) that stayed errors after retries:
    # skipped so that one bad entity cannot fail its source forever, and counted here.
    skipped_entities: int = 0
    skipped: list[dict[str, Any]] = field(default_factory=list)
    cursor_before: dict[str, Any] = field(default_factory=dict)
    cursor_after: dict[str, Any] = field(default_factory=dict)
    schema_changes: dict[str, list[str]] = field(default_factory=dict)
    window_start: str | None = None
    window_end: str | None = None
    error: str | None = None

    def as_row(self) -> dict[str, Any]:
        return asdict(self)

    def as_json(self) -> dict[str, Any]:
        row = self.as_row()
        for key in ("started_at", "finished_at"):
            row[key] = row[key].isoformat().replace("+00:00", "Z")
        return row


def source_record(run_id: str, command: str, result: Any, window: tuple[str, str] | None = None) -> RunRecord:
    """One ``ops.runs`` row from a pipelines.runner.SourceResult."""
    stats = result.requests or {}
    throttled, server, connection = (int(stats.get(k, 0)) for k in ("throttled", "server_errors", "connection_errors"))
    return RunRecord(
        run_id=run_id,
        command=command,
        source=result.name,
        status=result.status,
        started_at=result.started_at,
        finished_at=result.finished_at,
        seconds=round(result.seconds, 3),
        rows_total=sum(result.rows.values()),
        rows=dict(result.rows),
        requests=int(stats.get("requests", 0)),
        # Every 429, 5xx and dropped connection is retried by dlt's client until its
        # retry budget is spent: together they are the retries the run made.
        retries=throttled + server + connection,
        throttled_429=throttled,
        server_errors_5xx=server,
        connection_errors=connection,
        skipped_entities=int(stats.get("skipped_entities", 0)),
        skipped=list(stats.get("skipped", [])),
        cursor_before=result.cursor_before,
        cursor_after=result.cursor_after,
        schema_changes=result.schema_changes,
        window_start=window[0] if window else None,
        window_end=window[1] if window else None,
        error=result.message if result.status != "loaded" else None,
    )


def transform_record(run_id: str, command: str, result: Any, started_at: datetime, finished_at: datetime) -> RunRecord:
    """The transforms' row: status built | tests_failed | skipped | failed."""
    return RunRecord(
        run_id=run_id,
        command=command,
        source="transforms",
        status=result.status,
        started_at=started_at,
        finished_at=finished_at,
        seconds=round((finished_at - started_at).total_seconds(), 3),
        error=None if result.status == "built" else result.message,
    )


def cursor_summary(state: dict[str, Any], source: str) -> dict[str, Any]:
    """The cursors of one source's dlt state, flattened to ``{"<resource>.<field>": value}``.

    Incremental cursors give their ``last_value``; hand-written resource state gives
    its scalars, and a map of scalars (e.g. Marin's last day per media plan) its
    newest value; a map of records (Loops' lookups) only its size.
    """
    source_state = (state.get("sources") or {}).get(source) or {}
    out: dict[str, Any] = {}

    def add(prefix: str, key: str, value: Any) -> None:
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            if not value:
                return
            if all(not isinstance(v, (dict, list)) for v in value.values()):
                if len(value) <= 3:
                    for sub, v in value.items():
                        out[f"{name}.{sub}"] = _plain(v)
                else:
                    out[name] = max(str(v) for v in value.values())
            else:
                out[f"{name}.count"] = len(value)
        elif isinstance(value, (list, tuple)):
            return  # boundary hashes and the like: not a cursor
        else:
            out[name] = _plain(value)

    for resource, rstate in (source_state.get("resources") or {}).items():
        for key, value in (rstate or {}).items():
            if key == "incremental" and isinstance(value, dict):
                for cursor, inc in value.items():
                    if isinstance(inc, dict) and "last_value" in inc:
                        out[f"{resource}.{cursor}"] = _plain(inc["last_value"])
            else:
                add(resource, key, value)
    for key, value in source_state.items():
        if key != "resources":
            add("", key, value)
    return dict(sorted(out.items()))


def _plain(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def schema_changes(load_info: Any) -> dict[str, list[str]]:
    """Columns (and tables) a load added to the schema, per table; dlt's own tables left out."""
    changes: dict[str, list[str]] = {}
    for package in getattr(load_info, "load_packages", None) or []:
        for table, spec in (package.schema_update or {}).items():
            if table.startswith("_dlt"):
                continue
            columns = [c for c in (spec.get("columns") or {}) if not c.startswith("_dlt")]
            if columns:
                changes.setdefault(table, [])
                changes[table] += [c for c in columns if c not in changes[table]]
    return changes


def flush_pending(warehouse: str | Path) -> dlt.Pipeline:
    """The ops pipeline, with rows of a run killed while writing them loaded first.

    dlt's ``pipeline.run`` with a pending package loads that package and EXITS,
    dropping the new rows without a word: a run killed while writing ``ops.runs``
    would have cost the next run its own rows (found by the crash suite).
    """
    from pipelines.warehouse import finish_interrupted_normalize, make_pipeline

    pipeline = make_pipeline(OPS_DATASET, warehouse)
    finish_interrupted_normalize(pipeline)
    if pipeline.has_pending_data:
        pipeline.normalize()
        pipeline.load().raise_on_failed_jobs()
    return pipeline


def write_runs(warehouse: str | Path, records: Iterable[RunRecord]) -> None:
    from pipelines.warehouse import held_open, loader_file_format

    rows = [r.as_row() for r in records]
    if not rows:
        return
    # Held open as a source's load is (pipelines/warehouse.py): dlt opens the file
    # four times for these few rows.
    with held_open(warehouse):
        pipeline = flush_pending(warehouse)
        resource = dlt.resource(rows, name=RUNS_TABLE, write_disposition="append", primary_key=("run_id", "source"), columns=RUNS_COLUMNS)
        pipeline.run(resource, loader_file_format=loader_file_format()).raise_on_failed_jobs()


# ------------------------------------------------------------ interrupted runs
def marker_path(warehouse: str | Path) -> Path:
    warehouse = Path(warehouse).resolve()
    return warehouse.with_name(warehouse.name + ".running.json")


def start_marker(warehouse: str | Path, run_id: str, command: str, sources: Iterable[str]) -> Path:
    """Say a run is under way (written atomically: a kill never leaves half a marker)."""
    path = marker_path(warehouse)
    doc = {"run_id": run_id, "command": command, "sources": list(sources), "pid": os.getpid(),
           "started_at": utc_now().isoformat()}
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, path)
    return path


def clear_marker(warehouse: str | Path) -> None:
    marker_path(warehouse).unlink(missing_ok=True)


def interrupted_records(warehouse: str | Path, found_by: str) -> list[RunRecord]:
    """Rows for a run that left its marker behind: one per source it was running
    (plus its transforms), status ``interrupted``. Empty when there is no marker, or
    when that run's rows were written after all (killed between the two steps)."""
    path = marker_path(warehouse)
    try:
        doc = json.loads(path.read_text())
        run_id, command = str(doc["run_id"]), str(doc.get("command") or "?")
        started = datetime.fromisoformat(str(doc["started_at"]))
    except FileNotFoundError:
        return []
    except (ValueError, KeyError, TypeError):
        path.unlink(missing_ok=True)  # unreadable: only a marker we wrote could be here
        return []
    try:
        flush_pending(warehouse)  # its own rows, if it was killed while loading them
    except Exception:  # noqa: BLE001 - judged on what is in ops.runs; write_runs retries the flush
        pass
    if _run_recorded(warehouse, run_id):
        path.unlink(missing_ok=True)
        return []
    now = utc_now()
    error = (f"interrupted: the process (pid {doc.get('pid')}) ended without finishing "
             f"(killed, crashed or the machine stopped); found by run {found_by}")
    names = [str(n) for n in doc.get("sources") or []] or ["*"]
    return [
        RunRecord(run_id=run_id, command=command, source=name, status="interrupted", started_at=started,
                  finished_at=now, seconds=round((now - started).total_seconds(), 3), error=error)
        for name in names
    ]


def _run_recorded(warehouse: str | Path, run_id: str) -> bool:
    from pipelines.warehouse import is_local_duckdb

    if not is_local_duckdb() or not Path(warehouse).exists():
        return False
    import duckdb

    try:
        with duckdb.connect(str(warehouse), read_only=True) as con:
            return bool(con.execute(f"select count(*) from {OPS_DATASET}.{RUNS_TABLE} where run_id = ?", [run_id]).fetchone()[0])
    except duckdb.Error:  # no ops.runs yet
        return False
