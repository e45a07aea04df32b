"""Staging models as plain SQL, for tests that run or parse them outside dbt."""

from __future__ import annotations

import re
from pathlib import Path

from transforms import TRANSFORMS_DIR

STAGING_DIR = TRANSFORMS_DIR / "models" / "staging"
RAW_TABLE = re.compile(r"\{\{\s*raw_table\('(\w+)',\s*'(\w+)'\)\s*\}\}")


def plain_sql(path: Path) -> str:
    """The model with its raw table read directly (``dataset.table``): what the macro
    raw_table renders to when the table is there with every declared column."""
    sql = RAW_TABLE.sub(r"\1.\2", path.read_text())
    assert "{{" not in sql and "{%" not in sql, f"{path.name}: Jinja other than raw_table()"
    return sql
