"""Fixtures for running the real pipelines against the sandbox on throwaway files."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipelines.runner import Runner, RunResult


class Warehouse:
    """A throwaway DuckDB warehouse plus the state directory dlt keeps beside it."""

    def __init__(self, path: Path):
        self.path = path
        self._reader: duckdb.DuckDBPyConnection | None = None

    def run(self, *sources: str, **source_kwargs: Any) -> RunResult:
        return Runner(self.path, list(sources), source_kwargs=source_kwargs).run()

    @contextmanager
    def reading(self) -> Iterator[Warehouse]:
        """One read-only connection for every query of the block: opening one costs
        ~40 ms, a query on an open one ~5 ms. Nothing may write the file meanwhile
        (the connection would block a writer and not see its rows)."""
        if self._reader is not None:
            yield self
            return
        self._reader = duckdb.connect(str(self.path), read_only=True)
        try:
            yield self
        finally:
            self._reader.close()
            self._reader = None

    def query(self, sql: str, params: list[Any] | None = None) -> list[tuple]:
        if self._reader is not None:
            return self._reader.execute(sql, params or []).fetchall()
        with duckdb.connect(str(self.path), read_only=True) as con:
            return con.execute(sql, params or []).fetchall()

    def scalar(self, sql: str, params: list[Any] | None = None) -> Any:
        return self.query(sql, params)[0][0]

    def tables(self, schema: str) -> set[str]:
        rows = self.query("select table_name from information_schema.tables where table_schema = ?", [schema])
        return {r[0] for r in rows}


def peak_arrivals_within(entries: list[dict[str, Any]], seconds: float) -> int:
    """Most requests the sandbox saw arrive within ``seconds`` of each other. With
    every answer ``seconds`` late, each of them was still open when the last came."""
    times = sorted(datetime.fromisoformat(e["at"]).timestamp() for e in entries)
    peak, first = 0, 0
    for last, at in enumerate(times):
        while at - times[first] >= seconds:
            first += 1
        peak = max(peak, last - first + 1)
    return peak


@pytest.fixture
def warehouse(sandbox, monkeypatch, tmp_path) -> Warehouse:
    """Sandbox credentials in the environment, fresh dlt state, empty warehouse."""
    for name, value in sandbox.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt"))
    # Retries back off quickly in tests; Retry-After from the sandbox still rules.
    monkeypatch.setenv("RUNTIME__REQUEST_BACKOFF_FACTOR", "0.05")
    monkeypatch.setenv("RUNTIME__REQUEST_MAX_RETRY_DELAY", "2")
    return Warehouse(tmp_path / "warehouse.duckdb")


@pytest.fixture
def arrow_rows(monkeypatch) -> list[int]:
    """Rows of every batch sources/_shared/arrow.py turned into an Arrow table."""
    from sources._shared import arrow

    converted: list[int] = []
    to_arrow = arrow.rows_to_arrow

    def counting(rows: Any, columns: Any) -> Any:
        table = to_arrow(rows, columns)
        converted.append(table.num_rows)
        return table

    monkeypatch.setattr(arrow, "rows_to_arrow", counting)
    return converted
