"""Run the sources into the warehouse: one dlt pipeline per source, extracted
concurrently, normalized and loaded one at a time.

Each source lands in its own dataset named after it (``retreaver``, ...). Sources
with no credentials configured are skipped with a one-line notice; a failing
source does not stop the others.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dlt
import dlt.common.libs.pyarrow  # noqa: F401 - see below
import pyarrow  # noqa: F401 - see below
from dlt.common.configuration.exceptions import ConfigFieldMissingException

from pipelines import DEFAULT_WAREHOUSE
from pipelines.memory import older_objects_frozen, release_memory, tune_allocator
from pipelines.ops import cursor_summary, schema_changes, utc_now
from pipelines.warehouse import (
    destination_secrets,
    finish_interrupted_normalize,
    held_open,
    is_local_duckdb,
    loader_file_format,
    make_pipeline,
    out_of_memory_hint,
)
from sources._shared.http import Redactor, reset_clients, stats_for
from sources._shared.schema import guard_rows

# dlt imports pyarrow lazily, on the first parquet write; two sources extracting in
# threads then race on a half-initialised module ("partially initialized module
# 'pyarrow' has no attribute 'Table'"). Importing both here, once, avoids it.

SOURCE_NAMES = ("listenloop", "marin_social", "inboxfirst", "retreaver", "loops", "fx")
# Loops is looked up by email, and some emails are only known once other sources'
# rows are in the warehouse (calls' tags): it starts once the sources it reads
# them from (the datasets of its email columns) are done, beside the others.
READS_OTHERS = {"loops"}
# Sources that need no credentials and only serve the others (FX rates convert
# their money). They run once the others are done, and are skipped when every other
# source of the run was skipped (nothing configured): loading rates alone would turn
# "nothing to run" (exit 3) into a green run of empty marts. Asked for alone
# (`--sources fx`), they run. `sources.<name>.enabled = false` turns one off.
SERVES_OTHERS = {"fx"}

log = logging.getLogger("marketing_etl")


def _loops_email_columns(setting: Any = None) -> tuple[tuple[str, str, str], ...]:
    """Loops' email columns: ``setting`` (a run's own argument), else the configured
    ones (SOURCES__LOOPS__EMAIL_COLUMNS), else the source's default."""
    from sources.loops.helpers import email_columns_to_read

    return email_columns_to_read(dlt.config.get("sources.loops.email_columns") if setting is None else setting)


@dataclass
class SourceResult:
    name: str
    status: str  # "loaded" | "skipped" | "failed"
    message: str = ""
    rows: dict[str, int] = field(default_factory=dict)
    requests: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    started_at: datetime = field(default_factory=utc_now)
    finished_at: datetime = field(default_factory=utc_now)
    cursor_before: dict[str, Any] = field(default_factory=dict)
    cursor_after: dict[str, Any] = field(default_factory=dict)
    schema_changes: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status != "failed"


@dataclass
class RunResult:
    sources: list[SourceResult]

    @property
    def failed(self) -> list[SourceResult]:
        return [s for s in self.sources if s.status == "failed"]

    @property
    def loaded(self) -> list[SourceResult]:
        return [s for s in self.sources if s.status == "loaded"]


def _secret_values(name: str) -> list[str]:
    """Every secret configured for a source, to mask wherever text leaves us."""
    values = []
    for key in ("api_key", "password", "token"):
        try:
            value = dlt.secrets.get(f"sources.{name}.{key}")
        except Exception:  # noqa: BLE001 - a missing or malformed secret is simply not masked
            value = None
        if isinstance(value, str):
            values.append(value)
    return values


class redacted_logging:
    """Mask secrets in every log record created while active, from any logger.

    A record factory rather than a logger filter: filters on a logger do not see
    records of its children, and dlt logs request params (with ``?key=``) at DEBUG.
    """

    def __init__(self, redact: Callable[[str], str]) -> None:
        self.redact = redact
        self._previous = logging.getLogRecordFactory()

    def __enter__(self) -> redacted_logging:
        previous = self._previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            message = record.getMessage()
            clean = self.redact(message)
            if clean != message:
                record.msg, record.args = clean, None
            return record

        logging.setLogRecordFactory(factory)
        return self

    def __exit__(self, *exc: Any) -> None:
        logging.setLogRecordFactory(self._previous)


def _load_source(name: str) -> Any:
    module = importlib.import_module(f"sources.{name}")
    return getattr(module, f"{name}_source")


class Runner:
    def __init__(
        self,
        warehouse: str | Path = DEFAULT_WAREHOUSE,
        sources: list[str] | None = None,
        source_kwargs: dict[str, dict[str, Any]] | None = None,
        progress: Callable[[str], Any] | None = None,
    ):
        """``progress(name)`` returns a dlt progress collector for that source's pipeline."""
        self.progress = progress
        self.warehouse = Path(warehouse)
        self.names = list(sources or SOURCE_NAMES)
        unknown = set(self.names) - set(SOURCE_NAMES)
        if unknown:
            raise ValueError(f"unknown sources: {', '.join(sorted(unknown))} (known: {', '.join(SOURCE_NAMES)})")
        self.source_kwargs = source_kwargs or {}
        self._load_lock = threading.Lock()  # DuckDB has one writer: load one source at a time
        self.redact = Redactor([*(v for n in self.names for v in _secret_values(n)), *destination_secrets()])

    def run(self) -> RunResult:
        reset_clients()
        tune_allocator()
        with redacted_logging(self.redact), older_objects_frozen():
            # Import every source module here, in one thread: imports racing in the
            # worker threads deadlock on Python's module locks (seen: dlt's
            # rest_client.auth imported by two sources at once).
            self._factories = {}
            for name in self.names:
                try:
                    self._factories[name] = _load_source(name)
                except Exception as exc:  # noqa: BLE001 - reported as that source's failure
                    self._factories[name] = exc
            independent = [n for n in self.names if n not in READS_OTHERS and n not in SERVES_OTHERS]
            readers = [n for n in self.names if n in READS_OTHERS]
            results: dict[str, SourceResult] = {}
            with ThreadPoolExecutor(max_workers=max(1, len(independent) + len(readers)), thread_name_prefix="source") as pool:
                running = {name: pool.submit(self._run_one, name) for name in independent}
                for name in readers:
                    reads = [running[n] for n in self._reads_from(name) if n in running]
                    running[name] = pool.submit(self._run_after, reads, name)
                for name, future in running.items():
                    results[name] = future.result()
            for name in (n for n in self.names if n in SERVES_OTHERS):
                if results and all(r.status == "skipped" for r in results.values()):
                    results[name] = SourceResult(name, "skipped", "nothing to serve: no other source of this run is configured")
                else:
                    results[name] = self._run_one(name)
            return RunResult([results[n] for n in self.names])

    def _run_one(self, name: str) -> SourceResult:
        started, started_at = time.monotonic(), utc_now()
        log.info("source started", extra={"event": "source_started", "source": name})
        result = self._extract_and_load(name)
        result.started_at, result.finished_at = started_at, utc_now()
        result.seconds = time.monotonic() - started
        result.requests = stats_for(name)
        skipped = result.requests.get("skipped_entities", 0)
        log.log(
            logging.WARNING if result.status == "failed" or skipped else logging.INFO,
            "source %s",
            result.status,
            extra={
                "event": "source_finished",
                "source": name,
                "status": result.status,
                "rows": sum(result.rows.values()),
                "requests": result.requests.get("requests", 0),
                "throttled": result.requests.get("throttled", 0),
                **({"skipped_entities": skipped} if skipped else {}),
                "seconds": round(result.seconds, 1),
                **({"error": result.message} if result.status != "loaded" else {}),
            },
        )
        return result

    def _run_after(self, sources: list[Future[SourceResult]], name: str) -> SourceResult:
        wait(sources)
        return self._run_one(name)

    def _reads_from(self, name: str) -> set[str]:
        """The sources whose loaded rows ``name`` reads (of READS_OTHERS: Loops, the
        datasets of its email columns); every source when the setting cannot be read
        (the source itself then fails on it, naming it)."""
        try:
            return {dataset for dataset, _, _ in _loops_email_columns(self.source_kwargs.get(name, {}).get("email_columns"))}
        except Exception:  # noqa: BLE001 - reported by the Loops source itself
            return set(SOURCE_NAMES)

    def _loops_emails(self, email_columns: Any = None) -> list[str]:
        from sources.loops.helpers import destination_emails, parse_emails

        configured = parse_emails(dlt.config.get("sources.loops.emails"))
        columns = _loops_email_columns(email_columns)
        found = destination_emails(lambda dataset: make_pipeline(dataset, self.warehouse).sql_client(), columns)
        return sorted(set(configured) | set(found))

    def _extract_and_load(self, name: str) -> SourceResult:
        before: dict[str, Any] = {}
        try:
            factory = self._factories[name]
            if isinstance(factory, Exception):
                raise factory
            kwargs = dict(self.source_kwargs.get(name, {}))
            if str(dlt.config.get(f"sources.{name}.enabled")).strip().lower() in ("false", "0", "no", "off"):
                return SourceResult(name, "skipped", f"disabled (SOURCES__{name.upper()}__ENABLED=false)")
            if name == "loops" and not is_local_duckdb():
                # Loops reads the emails other sources loaded; on a server warehouse
                # through dlt's SQL client (the source itself reads a DuckDB file).
                kwargs.setdefault("emails", self._loops_emails(kwargs.get("email_columns")))
            elif name in READS_OTHERS:
                kwargs.setdefault("warehouse", str(self.warehouse))
            if "end_date" not in kwargs and dlt.config.get(f"sources.{name}.end_date") is not None:
                # dlt would inject it into every run: each would re-read that window
                # only and never move on. Windows belong to `marketing-etl backfill`.
                return SourceResult(
                    name, "failed", f"SOURCES__{name.upper()}__END_DATE is set: unset it (a window is for `marketing-etl backfill`)"
                )
            try:
                # Loops reads the warehouse file as it is built: not while another
                # source's thread holds it open to write (DuckDB refuses a read-only
                # connection beside a read-write one in one process, either way round).
                with self._load_lock if name in READS_OTHERS else nullcontext():
                    source = factory(**kwargs)
            except ConfigFieldMissingException as exc:
                missing = ", ".join(f"SOURCES__{name.upper()}__{f.upper()}" for f in exc.traces)
                return SourceResult(name, "skipped", f"not configured (missing {missing})")
            # Rows without a key or with a value that cannot be its column's type are
            # skipped and counted, never fail the load of the rows around them.
            guard_rows(source, name)
            pipeline = make_pipeline(name, self.warehouse, self.progress(name) if self.progress else None)
            # extract() alone does not look at the destination (run() would): restore
            # the state (cursors) stored in the warehouse when it is newer than ours,
            # e.g. a scheduler that starts every run with an empty DLT_DATA_DIR.
            with self._load_lock, held_open(self.warehouse):
                pipeline.sync_destination()
            before = cursor_summary(pipeline.state, name)
            pipeline.extract(source, loader_file_format=loader_file_format())
            with self._load_lock, held_open(self.warehouse):
                finish_interrupted_normalize(pipeline)
                release_memory()
                pipeline.normalize()
                release_memory()
                info = pipeline.load()
            rows = {t: n for t, n in pipeline.last_trace.last_normalize_info.row_counts.items() if not t.startswith("_dlt")}
            result = SourceResult(name, "loaded", f"{sum(rows.values())} rows in {len(rows)} tables", rows)
            result.cursor_before, result.cursor_after = before, cursor_summary(pipeline.state, name)
            result.schema_changes = schema_changes(info)
            if info.has_failed_jobs:
                result.status, result.message = "failed", "some load jobs failed"
            return result
        except Exception as exc:  # noqa: BLE001 - one source's failure must not stop the others
            log.debug("source %s failed:\n%s", name, self.redact(traceback.format_exc()))
            failed = SourceResult(name, "failed", self.redact(out_of_memory_hint(describe_error(exc))))
            # A failed run leaves the cursors where they were.
            failed.cursor_before = failed.cursor_after = before
            return failed


def describe_error(exc: BaseException) -> str:
    """One line naming the innermost cause (dlt wraps step errors several deep).

    Follows ``__cause__`` first; an implicit ``__context__`` only when it is a real
    error: an error raised inside a dlt child resource has the parent generator's
    ``StopIteration`` as its context, which explains nothing.

    An error raised while a generator was being closed is a consequence of why
    it was closed: when one of the pages walked side by side fails, dlt closes
    the others, and one still waiting for its answer in a worker thread raises
    "generator already executing" (``wrap_parallel_iterator``). The error that
    made dlt close them, the ``GeneratorExit``'s context, is the one named.
    """
    inner: BaseException = exc
    seen = {id(exc)}
    while True:
        nxt = inner.__cause__ or (None if inner.__suppress_context__ else inner.__context__)
        if isinstance(nxt, GeneratorExit) and nxt.__context__ is not None and id(nxt.__context__) not in seen:
            nxt = nxt.__context__
        if nxt is None or id(nxt) in seen or isinstance(nxt, (StopIteration, GeneratorExit)):
            break
        seen.add(id(nxt))
        inner = nxt
    text = f"{type(inner).__name__}: {inner}".strip()
    # A dropped connection or a timeout names no endpoint in its innermost link
    # ("RemoteDisconnected: ..."); the requests error above it knows the URL.
    endpoint = _failed_endpoint(exc)
    if endpoint and endpoint.split(" ", 1)[1] not in text:
        text += f" (on {endpoint})"
    return " ".join(text.split())[:500]


def _failed_endpoint(exc: BaseException) -> str | None:
    """``METHOD /path`` of the request an error chain failed on (no query: it may hold a key)."""
    seen: set[int] = set()
    error: BaseException | None = exc
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        request = getattr(error, "request", None)
        url = getattr(request, "url", None)
        if isinstance(url, str) and url:
            return f"{getattr(request, 'method', None) or 'GET'} {urlsplit(url).path}"
        error = error.__cause__ or error.__context__
    return None
