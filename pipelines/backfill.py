"""``marketing-etl backfill``: reload a window of days, idempotently, in chunks.

Each chunk is one ordinary run of the source's pipeline with ``start_date`` and
``end_date`` set. With ``end_date`` set the sources read exactly that window and
neither read nor write their cursors (the convention of dlt's own ``Incremental``
with an ``end_value``), so the hourly runs carry on from where they were. Rows are
merged on their primary keys: re-running a backfill rewrites the same rows and
adds none. Chunks load one after the other, so an interrupted backfill keeps the
chunks it finished; run it again to complete it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from pipelines.runner import Runner, SourceResult

# Sources with a time window to reload. ListenLoop serves only current lifetime
# counters (no history), Loops only current contacts: a normal run is their backfill.
BACKFILLABLE = ("retreaver", "marin_social", "inboxfirst")
DEFAULT_CHUNK_DAYS = 7


class BackfillError(ValueError):
    pass


@dataclass
class BackfillResult:
    source: str
    chunks: list[tuple[tuple[str, str], SourceResult]] = field(default_factory=list)

    @property
    def failed(self) -> tuple[tuple[str, str], SourceResult] | None:
        return next((c for c in self.chunks if c[1].status == "failed"), None)

    @property
    def rows(self) -> int:
        return sum(sum(r.rows.values()) for _, r in self.chunks)


def chunks(start: date, end: date, days: int) -> Iterator[tuple[date, date]]:
    """[start, end) cut into windows of ``days`` days, end exclusive."""
    if days < 1:
        raise BackfillError("--chunk-days must be at least 1")
    cursor = start
    while cursor < end:
        nxt = min(cursor + timedelta(days=days), end)
        yield cursor, nxt
        cursor = nxt


def parse_window(source: str, start: str, end: str, today: date) -> tuple[date, date]:
    if source not in BACKFILLABLE:
        raise BackfillError(
            f"{source} cannot be backfilled: its API serves no history by date "
            f"(backfillable: {', '.join(BACKFILLABLE)}); a normal run reloads it whole"
        )
    try:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError as exc:
        raise BackfillError(f"--start and --end must be dates (YYYY-MM-DD): {exc}") from None
    if first >= last:
        raise BackfillError(f"--start {first} must be before --end {last} (the end is exclusive)")
    if first > today:
        raise BackfillError(f"--start {first} is in the future")
    return first, last


def run_backfill(
    warehouse: str | Path,
    source: str,
    start: date,
    end: date,
    chunk_days: int = DEFAULT_CHUNK_DAYS,
    progress: Callable[[str], Any] | None = None,
    on_chunk: Callable[[tuple[str, str], SourceResult], None] | None = None,
) -> BackfillResult:
    result = BackfillResult(source)
    for first, last in chunks(start, end, chunk_days):
        window = (first.isoformat(), last.isoformat())
        kwargs = {source: {"start_date": window[0], "end_date": window[1]}}
        (chunk,) = Runner(warehouse, [source], source_kwargs=kwargs, progress=progress).run().sources
        result.chunks.append((window, chunk))
        if on_chunk:
            on_chunk(window, chunk)
        if chunk.status != "loaded":
            break  # later chunks wait for a re-run; merged chunks stay loaded
    return result
