"""The backfill window every windowed source accepts (see pipelines/backfill.py)."""

from __future__ import annotations

from datetime import date


def backfill_window(source: str, start_date: str | None, end_date: str | None) -> tuple[date, date] | None:
    """``[start_date, end_date)`` as dates (end exclusive, like dlt's own
    ``Incremental.end_value``), or None for a normal, incremental run."""
    if end_date is None:
        return None
    if not start_date:
        raise ValueError(f"{source}: end_date (backfill window) needs start_date; got start_date=None")
    start, end = date.fromisoformat(str(start_date)[:10]), date.fromisoformat(str(end_date)[:10])
    if end <= start:
        raise ValueError(f"{source}: end_date {end} must be after start_date {start} (end is exclusive)")
    return start, end
