"""Column hints shared by the sources."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Iterable

from dlt.common.schema.typing import TColumnSchema

# Money: vendors send numbers or strings ("15.0"); never store as float.
MONEY = {"data_type": "decimal", "precision": 18, "scale": 6}


def decimal_columns(names: Iterable[str]) -> dict[str, TColumnSchema]:
    return {name: dict(MONEY) for name in names}  # type: ignore[misc]


def timestamp_columns(names: Iterable[str]) -> dict[str, TColumnSchema]:
    # dlt parses ISO-8601 with offsets and stores UTC timestamps.
    return {name: {"data_type": "timestamp", "timezone": True} for name in names}




def to_decimal(value: Any) -> Decimal | None:
    """Contract: money arrives as numbers (5.0) or strings ("0.08"). Through str, the
    shortest text that round-trips, so 12.34 stays 12.34 (Decimal(12.34) would not)."""
    if value is None or value == "":
        return None
    return Decimal(str(value))
