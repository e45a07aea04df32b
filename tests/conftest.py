"""Shared fixtures: one sandbox server per test session, reset before each test."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import pipelines  # noqa: F401 - sets RUNTIME__DLTHUB_TELEMETRY=false before dlt starts
from sandbox.control import SandboxControl
from sandbox.server import SandboxThread

# The sandbox clock sits 10 days behind the wall clock in tests, so a test can
# advance it several days without its data landing in the future.
TEST_NOW = (datetime.now(UTC) - timedelta(days=10)).replace(minute=0, second=0, microsecond=0)
TEST_SEED = 7


@pytest.fixture(autouse=True)
def _process_state_restored():
    """A test that calls the CLI in-process (``pipelines.cli.main``) configures the
    process for a command: the ``marketing_etl`` logger (own handler, no
    propagation), ``RUNTIME__LOG_LEVEL`` (dlt's errors only) and, for the demo, the
    sandbox's variables and ``DLT_DATA_DIR``. Put both back, so a later test's
    ``caplog`` sees our records and its CLI subprocesses inherit no settings."""
    import logging

    logger = logging.getLogger("marketing_etl")
    saved = (list(logger.handlers), logger.propagate, logger.level)
    environ = dict(os.environ)
    yield
    logger.handlers[:], logger.propagate, logger.level = saved[0], saved[1], saved[2]
    if dict(os.environ) != environ:
        os.environ.clear()
        os.environ.update(environ)


@pytest.fixture(scope="session")
def sandbox_server():
    with SandboxThread(seed=TEST_SEED, scale=1.0, now=TEST_NOW) as server:
        yield server


def sandbox_server_of(*apis: str):
    """A module's own ``sandbox_server`` with only these emulators, for a module
    whose tests talk to those alone: a reset then rebuilds only their stores (a
    full reset at scale 1 is ~1 s, most of it Retreaver's call log; ListenLoop's
    alone ~0.04 s). Use as ``sandbox_server = sandbox_server_of("listenloop")``."""

    @pytest.fixture(scope="module")
    def sandbox_server():
        with SandboxThread(seed=TEST_SEED, scale=1.0, now=TEST_NOW, apis=list(apis)) as server:
            yield server

    return sandbox_server


# The files that take longest, longest first (seconds from --durations of a whole
# run on 2 workers at load ~8: what counts is their order). pytest-xdist's --dist
# loadfile hands out whole files in collection order (pyproject.toml turns off its
# own reordering, which puts the files with the most tests first and so left these
# few-test, long files for the end: one worker still busy with the PostgreSQL runs
# while the other idled). Longest first, the many short files fill in at the end. A
# file not listed only runs later; nothing is skipped.
SLOWEST_FILES = (
    "tests/reliability/test_fault_matrix.py",  # 484
    "tests/transforms/test_end_to_end.py",  # 383
    "tests/sources/test_retreaver.py",  # 360
    "tests/sources/test_marin_social.py",  # 293
    "tests/pipelines/test_full_run.py",  # 248
    "tests/sources/test_inboxfirst.py",  # 245
    "tests/reliability/test_crash_consistency.py",  # 238
    "tests/reliability/test_secrets.py",  # 227
    "tests/reliability/test_bad_data.py",  # 215
    "tests/reliability/test_concurrency.py",  # 202
    "tests/pipelines/test_destinations.py",  # 138
    "tests/transforms/test_marts_golden.py",  # 134
    "tests/pipelines/test_run.py",  # 115
    "tests/pipelines/test_dashboard.py",  # 114, the demo
    "tests/sources/test_loops.py",  # 107
    "tests/pipelines/test_live_view.py",  # 95, the demo in tmux
    "tests/transforms/test_dbt.py",  # 92
    "tests/pipelines/test_backfill.py",  # 77
    "tests/pipelines/test_ops.py",  # 71
    "tests/reliability/test_bad_config.py",  # 67
)


_CACHE_DIR = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    """dbt's JSON schemas (pipelines/dbt.py, JsonSchemaCache) are kept in a cache
    directory of this test session, shared by its workers and the CLI runs they
    start (they inherit the variable), not in the user's ~/.cache."""
    if not hasattr(config, "workerinput"):
        config.stash[_CACHE_DIR] = os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="marketing-etl-test-cache-")


def pytest_unconfigure(config: pytest.Config) -> None:
    if _CACHE_DIR in config.stash:
        shutil.rmtree(config.stash[_CACHE_DIR], ignore_errors=True)


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto``: one worker more than the cores. Part of every worker's time is
    waiting, not computing: on the sandbox's slow answers, Loops' pace, retries'
    backoff and CLI subprocesses; a third worker on 2 cores fills those waits (the
    whole suite: 513 s on 2 workers, 471 s on 3, 493 s on 4). PYTEST_XDIST_AUTO_NUM_WORKERS
    still sets the number (xdist's own reading of it)."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    from xdist.plugin import pytest_xdist_auto_num_workers as xdist_cores  # xdist's own count of the cores

    return xdist_cores(config) + 1


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Order the files: SLOWEST_FILES first, then the others as pytest-xdist would
    (most tests first). A file's own tests keep their order."""
    rank = {name: i for i, name in enumerate(SLOWEST_FILES)}
    files: dict[str, int] = {}
    for item in items:
        path = item.nodeid.split("::", 1)[0]
        files[path] = files.get(path, 0) + 1
    items.sort(key=lambda item: (rank.get(path := item.nodeid.split("::", 1)[0], len(rank)), -files[path], path))


def pytest_addoption(parser: pytest.Parser) -> None:
    # Only the root conftest's options are known when pytest starts from the repository root.
    parser.addoption("--long", action="store_true", default=False, help="reliability suite: many more kill points, seeds and bad inputs")


SANDBOX_MODES = ("default", "doc_shapes")
# Run a test against both sandbox modes: our reading of the docs, and answers shaped
# exactly like the vendor docs' examples (see docs/sandbox.md, "Doc shapes").
both_sandbox_modes = pytest.mark.parametrize("sandbox_mode", SANDBOX_MODES)


@pytest.fixture
def sandbox_mode() -> str:
    """``default``; a test parametrized on ``sandbox_mode`` overrides it."""
    return "default"


@pytest.fixture
def sandbox_scale() -> float:
    """1.0; a module whose tests all use a smaller world overrides it (a fixture of
    the same name), so the sandbox is reset once, at that scale: a reset builds the
    whole world, about 1.5-2.5 s at scale 1 against 0.3 s at 0.05."""
    return 1.0


@pytest.fixture
def sandbox(sandbox_server, sandbox_mode, sandbox_scale) -> SandboxControl:
    """A freshly reset sandbox (same seed and clock, scale 1 unless the module's
    ``sandbox_scale`` says otherwise), no faults, empty log."""
    if sandbox_mode not in SANDBOX_MODES:
        raise ValueError(f"sandbox_mode must be one of {SANDBOX_MODES}")
    control = SandboxControl(sandbox_server.base_url)
    control.reset(seed=TEST_SEED, scale=sandbox_scale, now=TEST_NOW.isoformat(), doc_shapes=sandbox_mode == "doc_shapes")
    return control


def _pg_bin() -> Path | None:
    for candidate in [shutil.which("pg_ctl"), *sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), reverse=True)]:
        if candidate and Path(candidate).exists():
            return Path(candidate).resolve().parent
    return None


class PostgresServer:
    def __init__(self, bindir: Path, port: int):
        self.bindir, self.port = bindir, port

    def create_database(self, name: str) -> str:
        """A new, empty database; its dlt/psycopg2 connection string."""
        psql = str(self.bindir / "psql") if (self.bindir / "psql").exists() else "psql"
        subprocess.run([psql, "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-c", f"create database {name}"], check=True, capture_output=True)
        # trust auth ignores the password; dlt's Postgres credentials require one.
        return f"postgresql://postgres:unused@127.0.0.1:{self.port}/{name}"


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL server for the session (the machine's own binaries, a throwaway
    data directory, a free port); skipped, saying why, where it is not installed."""
    bindir = _pg_bin()
    if bindir is None or not (bindir / "initdb").exists():
        pytest.skip("PostgreSQL is not installed here (initdb/pg_ctl not found)")
    pytest.importorskip("psycopg2", reason="dlt[postgres] is not installed")
    # initdb refuses to run as root: run the server as the postgres user when we are root.
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    data = Path(tempfile.mkdtemp(prefix="marketing-etl-pg-"))
    if as_user:
        shutil.chown(data, "postgres")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(data / "db"), "-A", "trust", "-U", "postgres"], check=True, capture_output=True)
    options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data / "db"), "-o", options, "-l", str(data / "log"), "-w", "start"], check=True, capture_output=True)
    try:
        yield PostgresServer(bindir, port)
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data / "db"), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(data, ignore_errors=True)
