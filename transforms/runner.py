"""Run the SQL models in ``transforms/`` in dependency order on a dlt destination.

No dbt: a model is one SELECT in ``transforms/<layer>/<name>.sql``; the layer
decides where it lands and how:

    staging/       -> schema ``staging``,      views   (the only layer reading raw datasets)
    intermediate/  -> schema ``intermediate``, views
    marts/         -> schema ``marts``,        tables

Dependencies are read from the SQL itself (sqlglot finds every ``schema.table``
it references), so files need no ``ref()`` markup. Seeds (``transforms/seeds/*.csv``)
are loaded with dlt into schema ``seeds`` before the models run. Models are written
in DuckDB's dialect and transpiled by sqlglot for any other destination.

Data tests (``transforms/tests/*.sql``) are SELECTs returning offending rows; a test
passes when it returns none.

Any subset of sources builds the marts: a staging model whose raw table is absent
(its source is not configured, or has not loaded yet) reads an empty stand-in with
the columns its source declares (``sources/catalog.py``), and a declared column the
raw table lacks (a field the vendor has never sent) reads as a typed NULL. The
missing platform is then simply absent from the marts.
"""

from __future__ import annotations

import csv
import graphlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import dlt
import sqlglot
from sqlglot import exp

from sources.catalog import declared_columns

TRANSFORMS_DIR = Path(__file__).parent
LAYERS = {"staging": "view", "intermediate": "view", "marts": "table"}
SEEDS_SCHEMA = "seeds"
# Seed columns that hold money or rates: CSV carries no types, and these must not be floats.
DECIMAL_SEED_COLUMNS = {"rate", "usd_per_unit", "cost_per_thousand", "cost"}
# dlt destination type -> sqlglot dialect
DIALECTS = {"duckdb": "duckdb", "motherduck": "duckdb", "postgres": "postgres", "bigquery": "bigquery", "snowflake": "snowflake"}


class TransformError(Exception):
    """A model or data test failed; the message names the file."""


@dataclass
class Model:
    name: str
    layer: str
    path: Path
    sql: str
    depends_on: set[str] = field(default_factory=set)  # "schema.table"
    reads: set[str] = field(default_factory=set)  # every schema.table referenced

    @property
    def qualified(self) -> str:
        return f"{self.layer}.{self.name}"

    @property
    def materialization(self) -> str:
        return LAYERS[self.layer]


def referenced_tables(sql: str) -> set[str]:
    """Every ``schema.table`` a SELECT reads, CTE names excluded."""
    tree = sqlglot.parse_one(sql, read="duckdb")
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    out = set()
    for table in tree.find_all(exp.Table):
        if table.db:
            out.add(f"{table.db}.{table.name}")
        elif table.name not in ctes:
            out.add(table.name)
    return out


def discover(root: Path = TRANSFORMS_DIR) -> list[Model]:
    models = []
    for layer in LAYERS:
        for path in sorted((root / layer).glob("*.sql")):
            sql = path.read_text().strip().rstrip(";")
            try:
                reads = referenced_tables(sql)
            except sqlglot.errors.ParseError as exc:
                raise TransformError(f"{path.relative_to(root)}: cannot parse: {exc}") from exc
            models.append(Model(path.stem, layer, path, sql, reads=reads))
    names = {m.qualified for m in models}
    for model in models:
        model.depends_on = {t for t in model.reads if t in names}
        if model.layer != "staging":
            raw = {t for t in model.reads if t.split(".")[0] not in (*LAYERS, SEEDS_SCHEMA)}
            if raw:
                raise TransformError(f"{model.path.relative_to(root)}: only staging models may read raw tables, found {sorted(raw)}")
        missing = {t for t in model.reads if t.split(".")[0] in LAYERS and t not in names}
        if missing:
            raise TransformError(f"{model.path.relative_to(root)}: references unknown models {sorted(missing)}")
    return order(models)


def order(models: Iterable[Model]) -> list[Model]:
    by_name = {m.qualified: m for m in models}
    sorter = graphlib.TopologicalSorter({name: m.depends_on for name, m in by_name.items()})
    try:
        return [by_name[name] for name in sorter.static_order()]
    except graphlib.CycleError as exc:
        raise TransformError(f"models depend on each other in a cycle: {exc.args[1]}") from exc


def read_seed(path: Path) -> list[dict[str, Any]]:
    with path.open(newline="") as handle:
        return [{k: (v if v != "" else None) for k, v in row.items()} for row in csv.DictReader(handle)]


def load_seeds(
    destination: Any,
    root: Path = TRANSFORMS_DIR,
    pipelines_dir: str | None = None,
    settings: dict[str, Any] | None = None,
) -> dict[str, int]:
    """Load every seed CSV, and the run's settings, into schema ``seeds`` with dlt.

    Each is replaced whole on every build. ``settings`` become ``seeds.settings``
    (``key``, ``value``; a list value gives one row per item), so SQL models read
    configuration as data and stay plain SQL.
    """
    tables: dict[str, tuple[list[dict[str, Any]], dict[str, Any]]] = {}
    for path in sorted((root / "seeds").glob("*.csv")):
        header = path.open().readline().strip().split(",")
        tables[path.stem] = (read_seed(path), _seed_hints(header))
    if settings is not None:
        rows = [
            {"key": key, "value": str(item)}
            for key, value in settings.items()
            for item in (value if isinstance(value, (list, tuple)) else [value])
        ]
        tables["settings"] = (rows, {"key": {"data_type": "text"}, "value": {"data_type": "text"}})
    if not tables:
        return {}
    pipeline = dlt.pipeline("marketing_etl_seeds", destination=destination, dataset_name=SEEDS_SCHEMA, pipelines_dir=pipelines_dir)
    filled = {name: table for name, table in tables.items() if table[0]}
    resources = [dlt.resource(rows, name=name, write_disposition="replace", columns=hints) for name, (rows, hints) in filled.items()]
    # parquet where the destination takes it (DuckDB); others use their default format.
    on_duckdb = DIALECTS.get(pipeline.destination.destination_name) == "duckdb"
    if resources:
        pipeline.run(resources, loader_file_format="parquet" if on_duckdb else None)
    # dlt loads nothing for a seed emptied to its header, so its old rows would stay:
    # an empty seed is replaced by an empty table of the same columns.
    empty = {name: hints for name, (rows, hints) in tables.items() if not rows}
    if empty:
        dialect = DIALECTS.get(pipeline.destination.destination_name, "duckdb")
        with pipeline.sql_client() as client:
            client.execute_sql(f"CREATE SCHEMA IF NOT EXISTS {SEEDS_SCHEMA}")
            for name, hints in empty.items():
                columns = ", ".join(f'"{c}" {sql_type(h)}' for c, h in hints.items())
                create = sqlglot.transpile(f"CREATE TABLE {SEEDS_SCHEMA}.{name} ({columns})", read="duckdb", write=dialect)[0]
                # Postgres binds views to the tables they read; they are rebuilt after the seeds.
                cascade = " CASCADE" if dialect == "postgres" else ""
                client.execute_sql(f"DROP TABLE IF EXISTS {SEEDS_SCHEMA}.{name}{cascade}")
                client.execute_sql(create)
    return {name: len(rows) for name, (rows, _) in tables.items()}


def _seed_hints(header: list[str]) -> dict[str, Any]:
    """Types for seed columns: CSV carries none, and a rate must not become a float."""
    hints: dict[str, Any] = {}
    for column in header:
        if column in DECIMAL_SEED_COLUMNS:
            hints[column] = {"data_type": "decimal", "precision": 18, "scale": 8}
        elif column.endswith("_date") or column == "date_day":
            hints[column] = {"data_type": "date"}
        else:
            hints[column] = {"data_type": "text"}
    return hints


# dlt data types -> DuckDB SQL types, for stand-in columns (sqlglot transpiles them).
SQL_TYPES = {
    "text": "VARCHAR",
    "bigint": "BIGINT",
    "double": "DOUBLE",
    "bool": "BOOLEAN",
    "date": "DATE",
    "time": "TIME",
    "json": "JSON",
    "binary": "BLOB",
}


def sql_type(hints: dict[str, Any]) -> str:
    data_type = hints.get("data_type")
    if data_type in ("decimal", "wei"):
        return f"DECIMAL({hints.get('precision', 38)}, {hints.get('scale', 9)})"
    if data_type == "timestamp":
        return "TIMESTAMPTZ" if hints.get("timezone", True) else "TIMESTAMP"
    if data_type not in SQL_TYPES:
        raise TransformError(f"no SQL type for dlt data type {data_type!r}")
    return SQL_TYPES[data_type]


def stand_in(table: str, present: set[str] | None, declared: dict[str, dict[str, Any]]) -> str | None:
    """The SELECT that replaces raw ``table`` in a staging model, or None when the
    table has every declared column. ``present``: the table's columns, None if absent."""
    if present is not None:
        missing = [c for c in declared if c not in present]
        if not missing:
            return None
        nulls = ", ".join(f'CAST(NULL AS {sql_type(declared[c])}) AS "{c}"' for c in missing)
        return f"SELECT *, {nulls} FROM {table}"
    if not declared:
        raise TransformError(f"{table} is not in the warehouse and its source declares no columns (TABLE_COLUMNS)")
    columns = ", ".join(f'CAST(NULL AS {sql_type(h)}) AS "{c}"' for c, h in declared.items())
    return f"SELECT {columns} WHERE 1 = 0"


def with_stand_ins(sql: str, stand_ins: dict[str, str]) -> str:
    """``sql`` (DuckDB) with each raw ``schema.table`` in ``stand_ins`` read through its stand-in."""
    if not stand_ins:
        return sql
    tree = sqlglot.parse_one(sql, read="duckdb")
    for table in list(tree.find_all(exp.Table)):
        name = f"{table.db}.{table.name}"
        if table.db and name in stand_ins:
            subquery = sqlglot.parse_one(stand_ins[name], read="duckdb").subquery(table.alias_or_name)
            table.replace(subquery)
    return tree.sql(dialect="duckdb")


def statements(model: Model, dialect: str, stand_ins: dict[str, str] | None = None) -> list[str]:
    sql = with_stand_ins(model.sql, stand_ins or {})
    select = sqlglot.transpile(sql, read="duckdb", write=dialect)[0] if dialect != "duckdb" else sql
    target = model.qualified
    if model.materialization == "view":
        # Postgres binds views to the views they read and refuses to drop one that
        # others depend on; CASCADE drops those too, and they are rebuilt after it
        # (models run in dependency order). DuckDB, BigQuery and Snowflake views
        # are late-binding: no CASCADE (BigQuery does not accept it).
        cascade = " CASCADE" if dialect == "postgres" else ""
        return [f"DROP VIEW IF EXISTS {target}{cascade}", f"CREATE VIEW {target} AS\n{select}"]
    # Build aside, then swap: a failed build leaves yesterday's mart in place.
    building = f"{model.layer}.{model.name}__building"
    return [
        f"DROP TABLE IF EXISTS {building}",
        f"CREATE TABLE {building} AS\n{select}",
        f"DROP TABLE IF EXISTS {target}",
        f"ALTER TABLE {building} RENAME TO {model.name}",
    ]


@dataclass
class TestResult:
    name: str
    failures: int
    sample: list[tuple] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failures == 0


def raw_tables(models: Iterable[Model]) -> list[str]:
    return sorted({t for m in models if m.layer == "staging" for t in m.reads if "." in t})


def present_columns(client: Any, table: str) -> set[str] | None:
    """The columns of raw ``schema.table`` in the warehouse, None if it is not there."""
    schema, name = table.split(".", 1)
    rows = client.execute_sql(
        "select column_name from information_schema.columns where table_schema = %s and table_name = %s", schema, name
    )
    return {r[0] for r in rows} if rows else None


@dataclass
class RawCoverage:
    """Which raw tables the build reads as they are and which through stand-ins."""

    stand_ins: dict[str, str] = field(default_factory=dict)  # "schema.table" -> SELECT
    absent: list[str] = field(default_factory=list)  # raw tables not in the warehouse
    filled: dict[str, list[str]] = field(default_factory=dict)  # table -> declared columns it lacks

    @property
    def absent_sources(self) -> list[str]:
        """Sources none of whose raw tables are here: absent from the marts."""
        return sorted({t.split(".")[0] for t in self.absent})


def raw_coverage(client: Any, models: Iterable[Model]) -> RawCoverage:
    declared = declared_columns()
    coverage = RawCoverage()
    for table in raw_tables(models):
        present = present_columns(client, table)
        select = stand_in(table, present, declared.get(table, {}))
        if select is None:
            continue
        coverage.stand_ins[table] = select
        if present is None:
            coverage.absent.append(table)
        else:
            coverage.filled[table] = [c for c in declared.get(table, {}) if c not in present]
    return coverage


class MissingRawTables(TransformError):
    """No raw table at all: no source has loaded into this warehouse yet."""


@dataclass
class BuildResult:
    tests: list[TestResult]
    coverage: RawCoverage


def build(
    pipeline: dlt.Pipeline,
    root: Path = TRANSFORMS_DIR,
    run_tests: bool = True,
    settings: dict[str, Any] | None = None,
) -> BuildResult:
    """Load seeds and settings, build every model in order, then run the data tests."""
    models = discover(root)
    dialect = DIALECTS.get(pipeline.destination.destination_name, "duckdb")
    with pipeline.sql_client() as client:
        coverage = raw_coverage(client, models)
    if coverage.absent and len(coverage.absent) == len(raw_tables(models)):
        raise MissingRawTables(f"no raw tables loaded yet (none of {', '.join(coverage.absent)})")
    load_seeds(pipeline.destination, root, pipelines_dir=pipeline.pipelines_dir, settings=settings)
    with pipeline.sql_client() as client:
        for schema in LAYERS:
            client.execute_sql(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        for model in models:
            stand_ins = coverage.stand_ins if model.layer == "staging" else {}
            for statement in statements(model, dialect, stand_ins):
                try:
                    client.execute_sql(statement)
                except Exception as exc:  # noqa: BLE001 - name the model, keep the database's words
                    raise TransformError(f"{model.path.relative_to(root)}: {' '.join(str(exc).split())[:600]}") from exc
        tests = run_data_tests(client, root, dialect) if run_tests else []
    return BuildResult(tests, coverage)


def run_data_tests(client: Any, root: Path, dialect: str) -> list[TestResult]:
    results = []
    for path in sorted((root / "tests").glob("*.sql")):
        sql = path.read_text().strip().rstrip(";")
        if dialect != "duckdb":
            sql = sqlglot.transpile(sql, read="duckdb", write=dialect)[0]
        try:
            rows = client.execute_sql(sql) or []
        except Exception as exc:  # noqa: BLE001
            raise TransformError(f"{path.relative_to(root)}: {' '.join(str(exc).split())[:600]}") from exc
        results.append(TestResult(path.stem, len(rows), [tuple(r) for r in rows[:5]]))
    return results
