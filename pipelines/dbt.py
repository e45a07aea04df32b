"""Run the dbt project in ``transforms/`` on the warehouse the sources load into.

dbt is invoked in this process (``dbtRunner``: no interpreter start-up per command)
with a profile generated from the dlt configuration of the warehouse, in a
temporary directory that is removed afterwards: the destination dlt loads
(``[warehouse] destination`` and dlt's credentials) is the one dbt builds on, and
there is no second place for credentials. The profile names a password only as
``env_var('DBT_ENV_SECRET_...')``, which dbt masks in everything it logs.

A build is ``dbt seed``, ``dbt run``, ``dbt test`` on one parsed manifest: every
model is built, then every data test runs (a failing test names itself and its
offending rows; it does not stop the other tests, as ``dbt build`` would).

Any subset of sources builds: the staging models read their raw tables through the
macro ``raw_table`` (transforms/macros/raw_table.sql), which stands in typed empty
tables and typed NULL columns for what is not loaded, from the columns each source
declares (``sources/catalog.py``), passed here as ``var('raw_columns')``.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dlt
import yaml

from pipelines.warehouse import duckdb_settings, out_of_memory_hint
from sources.catalog import declared_columns
from transforms import TRANSFORMS_DIR

# The layers that may not read raw tables (source()): only staging models do.
NO_RAW_LAYERS = ("intermediate", "marts")
PASSWORD_ENV = "DBT_ENV_SECRET_WAREHOUSE_PASSWORD"  # DBT_ENV_SECRET_*: dbt masks it in logs
PROFILE_SCHEMA = "marts"  # models without a schema of their own (transforms/models/custom) land here
# dlt destination -> the dbt adapter that builds on it.
ADAPTERS = {"duckdb": "duckdb", "postgres": "postgres"}
# DuckDB runs each query on every core itself; more dbt threads only contend for them.
THREADS = {"duckdb": 1, "postgres": 4}


class TransformError(Exception):
    """A model or data test could not run; the message names it."""


class MissingRawTables(TransformError):
    """No raw table at all: no source has loaded into this warehouse yet."""


@dataclass
class TestResult:
    name: str
    failures: int
    sample: list[tuple] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failures == 0


@dataclass
class RawCoverage:
    """Which raw tables the build reads as they are and which through stand-ins."""

    absent: list[str] = field(default_factory=list)  # raw tables not in the warehouse
    filled: dict[str, list[str]] = field(default_factory=dict)  # table -> declared columns it lacks
    present: dict[str, list[str]] = field(default_factory=dict)  # table -> its columns (lower case)

    @property
    def absent_sources(self) -> list[str]:
        """Sources none of whose raw tables are here: absent from the marts."""
        return sorted({t.split(".")[0] for t in self.absent})


@dataclass
class BuildResult:
    tests: list[TestResult]
    coverage: RawCoverage


# dlt data types -> SQL types, for stand-in columns; per adapter where they differ.
SQL_TYPES = {
    "text": "varchar",
    "bigint": "bigint",
    "double": "double precision",
    "bool": "boolean",
    "date": "date",
    "time": "time",
    "json": {"duckdb": "json", "postgres": "jsonb"},
    "binary": {"duckdb": "blob", "postgres": "bytea"},
}


def sql_type(hints: dict[str, Any], adapter: str) -> str:
    data_type = hints.get("data_type")
    if data_type in ("decimal", "wei"):
        return f"decimal({hints.get('precision', 38)}, {hints.get('scale', 9)})"
    if data_type == "timestamp":
        return "timestamp with time zone" if hints.get("timezone", True) else "timestamp"
    if data_type not in SQL_TYPES:
        raise TransformError(f"no SQL type for dlt data type {data_type!r}")
    found = SQL_TYPES[data_type]
    return found[adapter] if isinstance(found, dict) else found


def raw_columns(adapter: str, declared: dict[str, dict[str, dict[str, Any]]] | None = None) -> dict[str, dict[str, str]]:
    """``var('raw_columns')``: "dataset.table" -> {column: SQL type}."""
    declared = declared_columns() if declared is None else declared
    return {table: {c: sql_type(h, adapter) for c, h in columns.items()} for table, columns in declared.items()}


def source_tables(root: Path = TRANSFORMS_DIR) -> list[str]:
    """Every raw ``schema.table`` the project declares as a dbt source."""
    tables = set()
    for path in sorted((root / "models").rglob("*.yml")):
        doc = yaml.safe_load(path.read_text()) or {}
        for source in doc.get("sources") or []:
            schema = source.get("schema", source["name"])
            tables |= {f"{schema}.{t.get('identifier', t['name'])}" for t in source.get("tables") or []}
    return sorted(tables)


def present_columns(client: Any, table: str) -> set[str] | None:
    """The columns of raw ``schema.table`` in the warehouse, None if it is not there."""
    schema, name = table.split(".", 1)
    rows = client.execute_sql(
        "select column_name from information_schema.columns where table_schema = %s and table_name = %s", schema, name
    )
    return {r[0] for r in rows} if rows else None


def raw_coverage(client: Any, tables: list[str], declared: dict[str, dict[str, Any]]) -> RawCoverage:
    coverage = RawCoverage()
    for table in tables:
        present = present_columns(client, table)
        if present is None:
            coverage.absent.append(table)
            continue
        coverage.present[table] = sorted(c.lower() for c in present)
        missing = [c for c in declared.get(table, {}) if c not in present]
        if missing:
            coverage.filled[table] = missing
    return coverage


def adapter_name(pipeline: dlt.Pipeline) -> str:
    name = pipeline.destination.destination_name
    if name not in ADAPTERS:
        raise TransformError(
            f"the transforms build with dbt on {', '.join(ADAPTERS)}; destination {name!r} has no dbt adapter installed here"
        )
    return ADAPTERS[name]


@contextmanager
def dbt_profile(pipeline: dlt.Pipeline) -> Iterator[Path]:
    """A profiles directory for the pipeline's destination, removed afterwards. The
    password never reaches the file: it is in the environment for the duration only."""
    adapter = adapter_name(pipeline)
    credentials = pipeline.destination_client().config.credentials
    output: dict[str, Any] = {"type": adapter, "schema": PROFILE_SCHEMA, "threads": THREADS[adapter]}
    secret = None
    if adapter == "duckdb":
        output["path"] = str(Path(credentials.database).resolve())
        # Under a memory cap of its own, like the loads (pipelines/warehouse.py).
        output["settings"] = duckdb_settings("transform")
    else:
        output.update(
            host=credentials.host,
            port=int(credentials.port or 5432),
            user=credentials.username,
            dbname=credentials.database,
            password='{{ env_var("%s") }}' % PASSWORD_ENV,  # noqa: UP031 - Jinja's braces
            connect_timeout=int(getattr(credentials, "connect_timeout", None) or 15),
        )
        secret = str(credentials.password or "")
    directory = Path(tempfile.mkdtemp(prefix="marketing-etl-profile-"))
    previous = os.environ.get(PASSWORD_ENV)
    try:
        profile = {"marketing_etl": {"target": "warehouse", "outputs": {"warehouse": output}}}
        (directory / "profiles.yml").write_text(yaml.safe_dump(profile, sort_keys=False))
        if secret is not None:
            os.environ[PASSWORD_ENV] = secret
        yield directory
    finally:
        if previous is None:
            os.environ.pop(PASSWORD_ENV, None)
        else:
            os.environ[PASSWORD_ENV] = previous
        shutil.rmtree(directory, ignore_errors=True)


def target_dir(root: Path, pipeline: dlt.Pipeline) -> Path:
    """dbt's target directory (manifest, partial-parse cache, compiled SQL), kept
    between builds so a build reparses only what changed, and apart per warehouse
    so two warehouses built at once never share one: beside a DuckDB warehouse
    (``<file>.dbt/``, like its lock files), else under the project's target/."""
    credentials = pipeline.destination_client().config.credentials
    if pipeline.destination.destination_name == "duckdb":
        database = Path(credentials.database).resolve()
        return database.with_name(database.name + ".dbt")
    where = f"{pipeline.destination.destination_name}|{getattr(credentials, 'host', '')}:{getattr(credentials, 'port', '')}/{credentials.database}"
    return Path(root) / "target" / f"build-{hashlib.sha1(where.encode()).hexdigest()[:12]}"


def release_connections() -> None:
    """dbt-duckdb keeps the database open for the life of the process; close it, so
    the warehouse can be opened again (read-only, by dlt, by the publisher)."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # dbt-duckdb not installed: nothing kept open
        return
    DuckDBConnectionManager.close_all_connections()
    gc.collect()


# The packages whose dataclasses dbt validates against JSON schemas: a cached
# schema is only read back by the same versions of all of them.
SCHEMA_PACKAGES = ("dbt-core", "dbt-common", "dbt-adapters", "dbt-duckdb", "dbt-postgres", "mashumaro")


class JsonSchemaCache:
    """dbt's JSON schemas of its own dataclasses, kept in a file between processes.

    dbt validates every parsed node, config and profile against a JSON schema that
    mashumaro builds from the dataclass on its first use in each process
    (``dbtClassMixin.json_schema``, cached in the process only): ~1 s of CPU of the
    ~3 s a process's first parse of this project takes, on every scheduled run
    (docs/benchmarks.md). A schema depends only on the class, so one file is kept
    per set of package versions (SCHEMA_PACKAGES, Python) under the user's cache
    directory. The validation itself stays dbt's. A missing, unreadable or
    unwritable file only means the schemas are built as dbt builds them."""

    def __init__(self, directory: Path | None = None):
        self.directory = directory
        self.schemas: dict[str, Any] = {}
        self.built = 0  # schemas this process built, not read from the file
        self.unsaved = False
        self.installed = False
        self.lock = threading.Lock()
        self._path: Path | None = None

    @property
    def path(self) -> Path:
        from importlib.metadata import PackageNotFoundError, version

        if self._path is None:
            directory = self.directory or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "marketing-etl"
            versions = [sys.version]
            for package in SCHEMA_PACKAGES:
                try:
                    versions.append(f"{package}=={version(package)}")
                except PackageNotFoundError:
                    versions.append(f"{package} absent")
            self._path = directory / f"dbt-json-schemas-{hashlib.sha256(chr(10).join(versions).encode()).hexdigest()[:16]}.json"
        return self._path

    def install(self) -> None:
        """Answer ``dbtClassMixin.json_schema`` from the file, building (and
        remembering) what it lacks. Once per process."""
        from dbt_common.dataclass_schema import dbtClassMixin

        with self.lock:
            if self.installed:
                return
            try:
                schemas = json.loads(self.path.read_text())
                self.schemas = schemas if isinstance(schemas, dict) else {}
            except (OSError, RuntimeError, ValueError):  # RuntimeError: no home directory
                self.schemas = {}
            build = getattr(dbtClassMixin.json_schema, "__func__", None)  # dbt's own builder
            self.installed = True
            if build is None:  # not the dbt-common this was written for: dbt's own way
                return
            cache = self

            def json_schema(cls: type) -> dict[str, Any]:
                name = f"{cls.__module__}:{cls.__qualname__}"
                schema = cache.schemas.get(name)
                if schema is None:
                    schema = build(cls)
                    with cache.lock:
                        cache.schemas[name] = schema
                        cache.built += 1
                        cache.unsaved = True
                return schema

            dbtClassMixin.json_schema = classmethod(json_schema)

    def save(self) -> None:
        """Write the file when this process built schemas it lacked; atomically, as
        runs in parallel each write a whole file."""
        with self.lock:
            if not self.unsaved:
                return
            schemas, self.unsaved = dict(self.schemas), False
        temporary = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.stem, suffix=".tmp")
            with os.fdopen(fd, "w") as f:
                json.dump(schemas, f)
            os.replace(temporary, self.path)
        except (OSError, RuntimeError, TypeError, ValueError):
            if temporary:  # not kept: the next process builds them as dbt does
                Path(temporary).unlink(missing_ok=True)


JSON_SCHEMAS = JsonSchemaCache()


class Dbt:
    """dbt commands on one project and one warehouse, sharing one parsed manifest."""

    def __init__(self, root: Path, profiles_dir: Path, target_path: Path, variables: dict[str, Any]):
        self.root = Path(root)
        self.base = [
            "--project-dir", str(self.root),
            "--profiles-dir", str(profiles_dir),
            "--target-path", str(target_path),
            "--vars", json.dumps(variables),
        ]
        self.target_path = target_path
        self.manifest: Any = None

    def invoke(self, command: list[str], *extra: str) -> Any:
        from dbt.cli.main import dbtRunner

        JSON_SCHEMAS.install()

        # Quiet: results come back as objects; logs would go to stdout (our --json)
        # and log files would be one more place to keep clean.
        args = [*command, *self.base, "--log-level", "none", "--log-level-file", "none", "--log-path", str(self.target_path), *extra]
        return dbtRunner(manifest=self.manifest).invoke(args)

    def parse(self) -> Any:
        result = self.invoke(["parse"])
        if not result.success:
            raise TransformError(f"dbt project {self.root.name}: {_one_line(result.exception)}")
        self.manifest = result.result
        JSON_SCHEMAS.save()
        return self.manifest


def _one_line(value: Any, limit: int = 600) -> str:
    return " ".join(str(value).split())[:limit]


def check_layers(manifest: Any) -> None:
    """Only staging models read raw tables: any other of our layers that does fails."""
    for node in manifest.nodes.values():
        if node.resource_type != "model" or len(node.fqn) < 3 or node.fqn[1] not in NO_RAW_LAYERS:
            continue
        raw = sorted(d.split(".", 2)[2] for d in node.depends_on.nodes if d.startswith("source."))
        if raw:
            raise TransformError(f"{node.original_file_path}: only staging models may read raw tables, found {raw}")


def node_failure(results: Any) -> str | None:
    """'<file>: <database error>' of the first node that errored, else None."""
    for result in results or []:
        status = str(getattr(result.status, "value", result.status))
        if status in ("error", "runtime error"):
            return out_of_memory_hint(f"{result.node.original_file_path}: {_one_line(result.message)}", "transform")
    return None


def build(
    pipeline: dlt.Pipeline,
    root: Path = TRANSFORMS_DIR,
    run_tests: bool = True,
    settings: dict[str, Any] | None = None,
    select: str | None = None,
) -> BuildResult:
    """Load the seeds, build the models, then run the data tests (of ``select``,
    a dbt selector, when given)."""
    root = Path(root)
    adapter = adapter_name(pipeline)
    declared = declared_columns()
    tables = source_tables(root)
    with pipeline.sql_client() as client:
        coverage = raw_coverage(client, tables, declared)
    if tables and len(coverage.absent) == len(tables):
        raise MissingRawTables(f"no raw tables loaded yet (none of {', '.join(coverage.absent)})")
    undeclared = [t for t in coverage.absent if t not in declared]
    if undeclared:
        raise TransformError(f"{', '.join(undeclared)}: not in the warehouse and its source declares no columns (TABLE_COLUMNS)")
    variables: dict[str, Any] = {
        "raw_columns": raw_columns(adapter, {t: declared[t] for t in tables if t in declared}),
        # raw_table() reads which raw tables and columns exist from here, not from
        # dbt's relation cache: on Postgres (4 threads) a model could ask while
        # another thread was still filling the cache for that schema and see a
        # loaded table as absent (its platform silently left out of the marts).
        "raw_present": coverage.present,
    }
    if settings is not None:
        variables["transforms"] = {k: ("" if v is None else v) for k, v in settings.items()}
    selection = ["--select", select] if select else []
    tests: list[TestResult] = []
    failing: list[tuple[TestResult, str]] = []
    try:
        with dbt_profile(pipeline) as profiles:
            dbt = Dbt(root, profiles, target_dir(root, pipeline), variables)
            check_layers(dbt.parse())
            # A full build replaces the seeds whole (also a CSV whose columns changed); a
            # selection keeps their tables (a drop cascades, on Postgres, to views it
            # would not rebuild).
            for command in (["seed", "--full-refresh"] if not select else ["seed"], ["run"]):
                result = dbt.invoke(command, *selection)
                failure = node_failure(result.result)
                if failure or not result.success:
                    raise TransformError(failure or f"dbt {command[0]}: {_one_line(result.exception)}")
            if run_tests:
                # Of a selection, the tests all of whose models were selected (dbt's
                # default also picks tests that read models left out, maybe never built).
                cautious = ["--indirect-selection", "cautious"] if select else []
                result = dbt.invoke(["test"], *selection, *cautious)
                failure = node_failure(result.result)
                if failure or (result.exception is not None):
                    raise TransformError(failure or f"dbt test: {_one_line(result.exception)}")
                for test in result.result or []:
                    tests.append(TestResult(test.node.name, int(test.failures or 0)))
                    if tests[-1].failures:
                        failing.append((tests[-1], test.node.compiled_code))
    finally:
        release_connections()
    if failing:
        with pipeline.sql_client() as client:
            for test, sql in failing:
                test.sample = _sample(client, sql)
    tests.sort(key=lambda t: t.name)
    return BuildResult(tests, coverage)


def _sample(client: Any, sql: str, rows: int = 5) -> list[tuple]:
    """The first offending rows of a failing test, as the test selects them."""
    with client.execute_query(sql.strip().rstrip(";")) as cursor:
        return [tuple(r) for r in cursor.fetchmany(rows)]


def run_dbt(pipeline: dlt.Pipeline, args: list[str], root: Path = TRANSFORMS_DIR, settings: dict[str, Any] | None = None) -> int:
    """Any dbt command (``marketing-etl dbt docs generate``) on the warehouse, with the
    generated profile and the same vars as a build; dbt prints as it usually does.
    Artifacts go to transforms/target unless ``--target-path`` says otherwise."""
    from dbt.cli.main import dbtRunner

    declared = declared_columns()
    tables = [t for t in source_tables(root) if t in declared]
    with pipeline.sql_client() as client:
        present = raw_coverage(client, source_tables(root), declared).present
    variables: dict[str, Any] = {"raw_columns": raw_columns(adapter_name(pipeline), {t: declared[t] for t in tables}), "raw_present": present}
    if settings is not None:
        variables["transforms"] = settings
    target = Path(root) / "target"
    extra = [] if "--target-path" in args else ["--target-path", str(target)]
    extra += [] if "--log-path" in args else ["--log-path", str(target)]
    try:
        with dbt_profile(pipeline) as profiles:
            result = dbtRunner().invoke(
                [*args, "--project-dir", str(root), "--profiles-dir", str(profiles), "--vars", json.dumps(variables), *extra]
            )
    finally:
        release_connections()
    return 0 if result.success else 1
