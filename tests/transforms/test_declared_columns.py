"""Every raw column a staging model reads is declared (typed) on its source's resource,
so a vendor that omits a field, or only ever sends null, cannot break the marts."""

from __future__ import annotations

import pytest
import sqlglot
from sqlglot import exp

from sources.catalog import declared_columns
from tests.transforms.staging import STAGING_DIR, plain_sql


def raw_reads(sql: str) -> dict[str, set[str]]:
    """``dataset.table`` -> the columns a staging model reads from it.

    Staging models read their raw table in a ``source`` CTE (``select * from raw``)
    and name its columns in the CTE that selects from ``source``."""
    tree = sqlglot.parse_one(sql, read="duckdb")
    raw = {f"{t.db}.{t.name}" for t in tree.find_all(exp.Table) if t.db}
    assert len(raw) == 1, f"a staging model reads one raw table, found {sorted(raw)}"
    (table,) = raw
    columns: set[str] = set()
    for select in tree.find_all(exp.Select):
        from_ = select.args.get("from")
        source = from_.this if from_ is not None else None
        if isinstance(source, exp.Table) and (source.name == "source" or (source.db and f"{source.db}.{source.name}" == table)):
            columns |= {c.name for c in select.find_all(exp.Column)}
    return {table: columns}


STAGING = sorted(STAGING_DIR.glob("*.sql"))


@pytest.mark.parametrize("path", STAGING, ids=[p.stem for p in STAGING])
def test_every_column_a_staging_model_reads_is_declared(path):
    declared = declared_columns()
    for table, columns in raw_reads(plain_sql(path)).items():
        assert table in declared, f"{path.name}: {table} has no TABLE_COLUMNS in its source's settings.py"
        missing = columns - set(declared[table])
        assert not missing, f"{path.name}: {table} columns read but not declared: {sorted(missing)}"
        untyped = [c for c in columns if not declared[table][c].get("data_type")]
        assert not untyped, f"{path.name}: {table} columns declared without a type: {untyped}"


def test_the_dbt_sources_are_the_raw_tables_staging_reads_and_all_are_declared():
    """transforms/models/staging/_sources.yml lists what the staging models read, and
    each has its columns declared (what raw_table stands in with when it is absent)."""
    from pipelines.dbt import source_tables

    read = {table for path in STAGING for table in raw_reads(plain_sql(path))}
    assert set(source_tables()) == read
    assert read <= set(declared_columns())
