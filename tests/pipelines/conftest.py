"""The pipeline tests run real sources too: reuse the throwaway-warehouse fixture."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import duckdb
import pytest
from dlt.destinations.impl.duckdb.configuration import DuckDbConnectionPool

from tests.sources.conftest import warehouse  # noqa: F401 - a pytest fixture

MARKED_DEPTH = 777


def settings_seen_by_dlt_connections(monkeypatch: pytest.MonkeyPatch, path: Path, module: ModuleType) -> list[int]:
    """Just before a load (when ``module.finish_interrupted_normalize`` runs), set a
    global DuckDB setting (``max_expression_depth = MARKED_DEPTH``) on the file, then
    record what every dlt connection after it sees. A database kept open sees the
    mark on each; one dlt reopened has forgotten it (1000, DuckDB's default)."""
    seen: list[int] = []
    loading = False
    borrow, before_load = DuckDbConnectionPool.borrow_conn, module.finish_interrupted_normalize

    def borrow_and_look(self, *args, **kwargs):
        connection = borrow(self, *args, **kwargs)
        if loading:
            seen.append(connection.execute("SELECT current_setting('max_expression_depth')").fetchone()[0])
        return connection

    def mark_then_load(pipeline):
        nonlocal loading
        with duckdb.connect(str(Path(path).resolve())) as connection:
            connection.execute(f"SET GLOBAL max_expression_depth = {MARKED_DEPTH}")
        loading = True
        before_load(pipeline)

    monkeypatch.setattr(DuckDbConnectionPool, "borrow_conn", borrow_and_look)
    monkeypatch.setattr(module, "finish_interrupted_normalize", mark_then_load)
    return seen
