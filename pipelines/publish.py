"""Publish the marts to a read-only serving file for BI tools.

DuckDB allows one writer and blocks it while any other process has the file
open. Dashboards therefore never open the warehouse: after each successful build
the marts (and the seeds they were built with) are copied into a new file beside
the serving file, which then replaces it with an atomic rename. A BI tool holding
the old serving file keeps reading the complete old copy (POSIX keeps the unlinked
inode alive) and sees the new one on its next connection; it never blocks a run
and never sees a half-written state.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

PUBLISHED_SCHEMAS = ("marts", "seeds")


SOURCE_ALIAS = "marketing_etl_published_from"


def serving_path(warehouse: str | Path) -> Path:
    warehouse = Path(warehouse).resolve()
    return warehouse.with_name(f"{warehouse.stem}.serving{warehouse.suffix or '.duckdb'}")


def publish(warehouse: str | Path, target: str | Path | None = None) -> Path:
    """Copy the published schemas to ``target`` atomically; return its path."""
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
        serving.execute(f"detach {SOURCE_ALIAS}")
        serving.execute("checkpoint")
    os.replace(building, target)  # atomic on one filesystem
    return target
