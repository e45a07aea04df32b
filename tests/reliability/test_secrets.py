"""Secrets: run scenarios with every source's key known in advance (the sandbox's
keys, which it checks, plus sentinel keys it refuses), then scan everything the
program wrote for them: stdout, stderr, DEBUG logs (--verbose), dlt's traces
(exceptions and their chained causes, unpickled and walked), state and load
packages under DLT_DATA_DIR, every value of every table of the warehouse and of
the serving file. Zero hits. See docs/reliability.md.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import pickle
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.conftest import TEST_NOW

SCALE = 0.05
SENTINELS = {
    "SOURCES__LISTENLOOP__API_KEY": "sentinel-listenloop-7f3a9c",
    "SOURCES__MARIN_SOCIAL__API_KEY": "sentinel-marin-2b8d41",
    "SOURCES__INBOXFIRST__API_KEY": "sentinel-inboxfirst-c0ffee",
    "SOURCES__RETREAVER__API_KEY": "sentinel-retreaver-91e2aa",
    "SOURCES__LOOPS__API_KEY": "sentinel-loops-5d6e77",
}
CLOSED = "http://127.0.0.1:9"


def run_cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], capture_output=True, text=True, timeout=600, env=env, cwd=cwd)


def clean_env(extra: dict[str, str], data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "DESTINATION__"))}
    return {**env, "DLT_DATA_DIR": str(data_dir), "RUNTIME__REQUEST_BACKOFF_FACTOR": "0.05", "RUNTIME__REQUEST_MAX_RETRY_DELAY": "1", **extra}


# ------------------------------------------------------------------ the scanners
def _texts(obj: Any, seen: set[int] | None = None, depth: int = 0) -> Iterator[str]:
    """Every string reachable from an unpickled object: containers, attributes,
    exception args and their chained causes/contexts."""
    seen = set() if seen is None else seen
    if id(obj) in seen or depth > 60:
        return
    seen.add(id(obj))
    if isinstance(obj, (str, bytes)):
        yield obj if isinstance(obj, str) else obj.decode("utf-8", "replace")
        return
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _texts(k, seen, depth + 1)
            yield from _texts(v, seen, depth + 1)
        return
    if isinstance(obj, (list, tuple, set, frozenset)):
        for v in obj:
            yield from _texts(v, seen, depth + 1)
        return
    if isinstance(obj, BaseException):
        yield str(obj)
        for linked in (obj.args, obj.__cause__, obj.__context__):
            yield from _texts(linked, seen, depth + 1)
    attrs = getattr(obj, "__dict__", None)
    if isinstance(attrs, dict):
        yield from _texts(attrs, seen, depth + 1)
    elif hasattr(obj, "_asdict"):
        yield from _texts(obj._asdict(), seen, depth + 1)


def file_texts(path: Path) -> Iterator[str]:
    raw = path.read_bytes()
    yield raw.decode("utf-8", "replace")  # the bytes as they are (pickles keep str as UTF-8)
    if raw[:2] == b"\x1f\x8b":
        yield gzip.decompress(raw).decode("utf-8", "replace")
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        yield json.dumps(pq.read_table(path).to_pylist(), default=str)
    if path.name.endswith(".pickle"):
        with path.open("rb") as f:
            yield from _texts(pickle.load(f))


def warehouse_texts(path: Path) -> Iterator[str]:
    from dlt.pipeline.state_sync import decompress_state

    with duckdb.connect(str(path), read_only=True) as con:
        tables = con.execute("select table_schema, table_name from information_schema.tables").fetchall()
        for schema, table in tables:
            columns = [r[0] for r in con.execute(f'describe "{schema}"."{table}"').fetchall()]
            for row in con.execute(f'select * from "{schema}"."{table}"').fetchall():
                values = dict(zip(columns, row))
                yield json.dumps(values, default=str)
                if table == "_dlt_pipeline_state" and values.get("state"):
                    yield json.dumps(decompress_state(values["state"]), default=str)


class Scan:
    """Counts what was scanned and every hit (secret, where)."""

    def __init__(self, secrets: list[str]):
        self.secrets = [s for s in secrets if s]
        self.hits: list[tuple[str, str]] = []
        self.texts = 0
        self.files = 0
        self.bytes = 0

    def text(self, text: str, where: str) -> None:
        self.texts += 1
        self.bytes += len(text)
        self.hits += [(s[:6] + "...", where) for s in self.secrets if s in text]

    def tree(self, root: Path) -> None:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            self.files += 1
            if path.suffix == ".duckdb":
                for text in warehouse_texts(path):
                    self.text(text, str(path))
                continue
            if path.suffix in (".wal", ".lock") or path.name.endswith(".lock"):
                continue
            for text in file_texts(path):
                self.text(text, str(path))


@pytest.fixture
def small(sandbox):
    """The sandbox, reset at SCALE (sandbox_scale below)."""
    return sandbox


@pytest.fixture
def sandbox_scale() -> float:
    """Every test here that uses the sandbox wants the small world: reset it once, at SCALE."""
    return SCALE


def test_no_key_reaches_anything_the_program_writes(small, tmp_path):
    real = {k: v for k, v in small.env().items() if k.endswith("__API_KEY")}
    assert set(real) == set(SENTINELS)
    scan = Scan([*real.values(), *SENTINELS.values()])
    outputs: list[tuple[str, subprocess.CompletedProcess]] = []
    codes: dict[str, int] = {}

    def cli(name: str, *args: str, env: dict[str, str]) -> None:
        result = run_cli(*args, env=env, cwd=tmp_path)
        outputs.append((name, result))
        codes[name] = result.returncode

    good = clean_env(small.env(), tmp_path / "dlt")
    warehouse = str(tmp_path / "w.duckdb")
    # 1. A full run at DEBUG with faults that put URLs (and so query keys) into
    #    errors: dropped connections (retried), a persistent 500 (fails a resource),
    #    429s; then transforms and the serving file.
    small.add_fault("drop", api="marin_social", rate=0.3, count=6)
    small.add_fault("drop", api="retreaver", rate=0.3, count=4)
    small.add_fault("500", api="retreaver", path_contains="reports")
    small.add_fault("429", api="loops", rate=0.5, count=4)
    small.add_fault("truncate", api="listenloop", count=1)
    cli("run with faults", "run", "--verbose", "--warehouse", warehouse, env=good)
    small.clear_faults()
    # 2. The same, clean: every source loads, the marts and serving file are built.
    cli("clean run", "run", "--verbose", "--warehouse", warehouse, env=good)
    cli("backfill", "backfill", "--verbose", "--source", "marin_social", "--start", (TEST_NOW.date().replace(day=1)).isoformat(),
        "--end", TEST_NOW.date().isoformat(), "--warehouse", warehouse, env=good)
    cli("status", "status", "--verbose", "--json", "--warehouse", warehouse, env=good)
    # 3. Keys the sandbox refuses (sentinels), at DEBUG, into the same warehouse.
    cli("refused keys", "run", "--verbose", "--warehouse", warehouse, env={**good, **SENTINELS})
    # 4. Every source pointed at a closed port with sentinel keys (the case).
    closed = {k: CLOSED for k in good if k.endswith("BASE_URL")}
    cli("closed port", "run", "--verbose", "--warehouse", str(tmp_path / "closed.duckdb"), env={**good, **SENTINELS, **closed})
    # 5. check, with real keys, refused keys and closed ports.
    cli("check ok", "check", "--verbose", "--json", env=good)
    cli("check refused", "check", "--verbose", env={**good, **SENTINELS})
    cli("check closed", "check", "--verbose", "--json", env={**good, **SENTINELS, **closed})

    assert codes["clean run"] == 0, outputs[1][1].stderr[-3000:]
    assert codes["run with faults"] == 1  # retreaver's reports failed loudly
    assert codes["refused keys"] == 2 and codes["closed port"] == 3 and codes["check ok"] == 0
    assert codes["check refused"] == 2 and codes["check closed"] == 2
    for name, result in outputs:
        scan.text(result.stdout, f"{name}: stdout")
        scan.text(result.stderr, f"{name}: stderr")
    assert any("level=debug" in r.stderr for _, r in outputs), "the scenarios must log at DEBUG"
    # Everything on disk: dlt's data dir (traces, state, load packages), warehouses,
    # the serving file, and anything else written beside them.
    scan.tree(tmp_path)
    assert (tmp_path / "w.serving.duckdb").exists()
    assert list((tmp_path / "dlt").rglob("trace.pickle")), "dlt traces must be among the scanned files"
    print(f"secrets scan: {len(outputs)} commands, {scan.files} files, {scan.texts} texts, {scan.bytes:,} characters, {len(scan.secrets)} secrets, {len(scan.hits)} hits")
    assert scan.hits == []


def test_exceptions_and_their_chained_causes_hold_no_key(small, monkeypatch, tmp_path):
    """In process: the failed sources' exceptions as dlt keeps them (trace) and every
    log record at DEBUG, with the keys in the query (Marin Social, Retreaver), in
    headers (ListenLoop, Loops) and in Basic auth (InboxFirst), against a closed port."""
    from pipelines import logs
    from pipelines.runner import Runner

    for key, value in {**small.env(), **SENTINELS}.items():
        monkeypatch.setenv(key, CLOSED if key.endswith("BASE_URL") else value)
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt"))
    monkeypatch.setenv("RUNTIME__REQUEST_BACKOFF_FACTOR", "0.05")
    monkeypatch.setenv("RUNTIME__REQUEST_MAX_RETRY_DELAY", "1")
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            text = record.getMessage()
            if record.exc_info:
                text += logging.Formatter().formatException(record.exc_info)
            records.append(text)

    logs.configure("verbose", terminal=False)
    handler = Keep(logging.DEBUG)
    root = logging.getLogger()
    root.addHandler(handler)
    logging.getLogger("marketing_etl").addHandler(handler)
    try:
        result = Runner(tmp_path / "w.duckdb", ["listenloop", "marin_social", "inboxfirst", "retreaver"]).run()
    finally:
        root.removeHandler(handler)
        logging.getLogger("marketing_etl").removeHandler(handler)
    assert [s.status for s in result.sources] == ["failed"] * 4
    scan = Scan(list(SENTINELS.values()))
    for s in result.sources:
        scan.text(s.message, f"{s.name}: message")
    for text in records:
        scan.text(text, "log record")
    traces = list((tmp_path / "dlt").rglob("trace.pickle"))
    assert len(traces) == 4
    for path in traces:
        with path.open("rb") as f:
            trace = pickle.load(f)
        exceptions = [e for e in _texts(trace)]
        assert any("Connection" in t for t in exceptions), "the trace must hold the connection errors"
        for text in exceptions:
            scan.text(text, str(path))
    assert scan.hits == []


def test_tls_verification_stays_on():
    from pipelines.runner import SOURCE_NAMES
    from sources._shared.http import reset_clients, session_for

    reset_clients()
    for name in SOURCE_NAMES:
        assert session_for(name).verify is True, name
    reset_clients()
    # And no code turns it off.
    root = Path(__file__).resolve().parents[2]
    offenders = [str(p) for d in ("sources", "pipelines") for p in (root / d).rglob("*.py") if "verify=False" in p.read_text()]
    assert offenders == []


def test_plain_http_base_url_warns_once_unless_allowed_and_loopback_is_exempt(monkeypatch):
    from sources._shared import http

    message = http.plain_http_warning("listenloop", "http://v2.listenloop.com")
    assert message and "listenloop" in message and "SOURCES__LISTENLOOP__ALLOW_HTTP" in message
    assert http.plain_http_warning("listenloop", "https://v2.listenloop.com") is None
    assert http.plain_http_warning("listenloop", "http://127.0.0.1:8765/listenloop") is None
    assert http.plain_http_warning("listenloop", "http://localhost:8765/listenloop") is None
    monkeypatch.setenv("SOURCES__LISTENLOOP__ALLOW_HTTP", "true")
    assert http.plain_http_warning("listenloop", "http://v2.listenloop.com") is None
    monkeypatch.delenv("SOURCES__LISTENLOOP__ALLOW_HTTP")
    monkeypatch.setattr(http, "_HTTP_WARNED", set())
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    logger = logging.getLogger("marketing_etl")
    handler = Keep(logging.WARNING)
    logger.addHandler(handler)
    try:
        for _ in range(3):
            http.warn_plain_http("listenloop", "http://v2.listenloop.com/campaigns")
    finally:
        logger.removeHandler(handler)
    assert len([m for m in seen if "plain http://" in m]) == 1


def test_the_cli_warns_at_startup_before_any_request(small, tmp_path):
    # The documented ListenLoop host is http://. The run stops at the preflight (a
    # bad start date elsewhere) so nothing leaves the machine; the warning is printed first.
    env = clean_env({**small.env(), "SOURCES__LISTENLOOP__BASE_URL": "http://v2.listenloop.com", "SOURCES__RETREAVER__START_DATE": "2100-01-01"}, tmp_path / "dlt")
    result = run_cli("run", "--warehouse", str(tmp_path / "w.duckdb"), env=env, cwd=tmp_path)
    assert result.returncode == 2
    warnings = [line for line in result.stderr.splitlines() if "plain http://" in line]
    assert len(warnings) == 1 and "listenloop" in warnings[0], result.stderr
    allowed = run_cli("run", "--warehouse", str(tmp_path / "w.duckdb"), env={**env, "SOURCES__LISTENLOOP__ALLOW_HTTP": "true"}, cwd=tmp_path)
    assert "plain http://" not in allowed.stderr
    # The sandbox (loopback, http://) stays quiet.
    quiet = run_cli("run", "--warehouse", str(tmp_path / "w.duckdb"), env={**env, "SOURCES__LISTENLOOP__BASE_URL": small.url("listenloop")}, cwd=tmp_path)
    assert "plain http://" not in quiet.stderr
