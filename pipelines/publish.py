"""Publish the marts to a read-only serving file for BI tools.

DuckDB allows one writer and blocks it while any other process has the file
open. Dashboards therefore never open the warehouse: after each successful build
the marts (and the seeds they were built with) are copied into a new file beside
the serving file, which then replaces it with an atomic rename. A BI tool holding
the old serving file keeps reading the complete old copy (POSIX keeps the unlinked
inode alive) and sees the new one on its next connection; it never blocks a run
and never sees a half-written state.

The serving file also carries the run history (``ops.runs``) and, when the caller
passes it, the freshness of every source as checked at publish time
(``ops.freshness``): the dashboard (pipelines/dashboard.py) reads only this file,
so it needs them here. Copying them at publish time, under the writer's lock, is
what lets a dashboard be built while a run writes the warehouse; reading the
warehouse instead would need the lock (and wait, or fail, during every run).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import duckdb

PUBLISHED_SCHEMAS = ("marts", "seeds")
# Run history beside the marts (no secrets: errors are redacted before they are recorded).
PUBLISHED_TABLES = (("ops", "runs"),)
FRESHNESS_TABLE = "freshness"


SOURCE_ALIAS = "marketing_etl_published_from"


def serving_path(warehouse: str | Path) -> Path:
    warehouse = Path(warehouse).resolve()
    return warehouse.with_name(f"{warehouse.stem}.serving{warehouse.suffix or '.duckdb'}")


def publish(warehouse: str | Path, target: str | Path | None = None, freshness: Any | None = None) -> Path:
    """Copy the published schemas (and ``ops.runs``) to ``target`` atomically; return
    its path. ``freshness`` (pipelines.status.Freshness) becomes ``ops.freshness``."""
    target = Path(target) if target else serving_path(warehouse)
    building = target.with_name(f".{target.name}.building")
    for leftover in (building, Path(f"{building}.wal")):
        leftover.unlink(missing_ok=True)
    with duckdb.connect(str(building)) as serving:
        # The warehouse is only read (the writer's lock is ours: see pipelines/lock.py).
        source = str(Path(warehouse).resolve()).replace("'", "''")  # ATTACH takes no parameters
        # An alias no file name can take: DuckDB names the building file's own
        # database after its stem, which is "warehouse" for warehouse.duckdb.
        serving.execute(f"attach '{source}' as {SOURCE_ALIAS} (read_only)")
        for schema in PUBLISHED_SCHEMAS:
            tables = serving.execute(
                f"select table_name from duckdb_tables() where database_name = '{SOURCE_ALIAS}' "
                "and schema_name = ? and not starts_with(table_name, '_dlt')",
                [schema],
            ).fetchall()
            if not tables:
                continue
            serving.execute(f'create schema "{schema}"')
            for (table,) in tables:
                serving.execute(f'create table "{schema}"."{table}" as select * from {SOURCE_ALIAS}."{schema}"."{table}"')
        for schema, table in PUBLISHED_TABLES:
            present = serving.execute(
                f"select count(*) from duckdb_tables() where database_name = '{SOURCE_ALIAS}' and schema_name = ? and table_name = ?",
                [schema, table],
            ).fetchone()[0]
            if present:
                serving.execute(f'create schema if not exists "{schema}"')
                serving.execute(f'create table "{schema}"."{table}" as select * from {SOURCE_ALIAS}."{schema}"."{table}"')
        serving.execute(f"detach {SOURCE_ALIAS}")
        if freshness is not None:
            _write_freshness(serving, freshness)
        serving.execute("checkpoint")
    os.replace(building, target)  # atomic on one filesystem
    return target


def _write_freshness(serving: Any, freshness: Any) -> None:
    """``ops.freshness``: one row per source and table (a source with no table: one
    row with a null ``table_name``), as judged by ``marketing-etl status`` when published."""
    serving.execute('create schema if not exists "ops"')
    serving.execute(
        f"""create table ops.{FRESHNESS_TABLE} (
            source varchar, source_stale boolean, reasons varchar, last_run_at varchar, last_run_status varchar,
            last_success_at varchar, table_name varchar, table_rows bigint, cursor_column varchar, newest_cursor varchar,
            age_hours double, stale_after_hours double, table_stale boolean, checked_at varchar)"""
    )
    rows = []
    for s in freshness.sources:
        head = [s.source, s.stale, "; ".join(s.reasons) or None, s.last_run_at, s.last_run_status, s.last_success_at]
        for t in s.tables or [None]:
            tail = [None] * 7 if t is None else [t.table, t.rows, t.cursor_column, t.newest_cursor, t.age_hours, t.stale_after_hours, t.stale]
            rows.append([*head, *tail, freshness.checked_at])
    if rows:
        serving.executemany(f"insert into ops.{FRESHNESS_TABLE} values ({', '.join(['?'] * 14)})", rows)
