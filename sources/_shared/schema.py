"""Column hints shared by the sources."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

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
    try:
        return Decimal(str(value))
    except ArithmeticError:
        # Not a number ("n/a"): left as sent, so that guard_rows rejects the row
        # naming the field (an exception here would fail the whole resource).
        return value


# ------------------------------------------------------------------- bad records
_NUMERIC = ("bigint", "decimal", "double")
_MOMENTS = ("date", "timestamp")


def _bad_value(value: Any, data_type: str) -> str | None:
    """Why a JSON string cannot be stored in a column of ``data_type`` (None: it can).
    Only strings are looked at: numbers, bools and nulls load as they are."""
    if not isinstance(value, str) or value == "":
        return None
    if data_type in _NUMERIC:
        try:
            number = Decimal(value.strip())
        except ArithmeticError:
            return "is not a number"
        if not number.is_finite() or (data_type == "bigint" and number != number.to_integral_value()):
            return "is not an integer" if data_type == "bigint" else "is not a finite number"
        return None
    if data_type in _MOMENTS:
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            import pendulum

            try:
                pendulum.parse(value)
            except Exception:  # noqa: BLE001 - any parser error: not a date
                return f"is not a {data_type}"
    return None


def guard_rows(source: Any, name: str) -> Any:
    """Add a last filter to every resource of ``source``: a row with no primary key,
    or with a string that cannot be its declared column's type (``"n/a"`` for spend),
    is not loaded. It is counted in ``ops.runs.skipped_entities`` with the resource,
    field and value, and logged, so the rows around it load and nothing is dropped
    silently. Without it, dlt fails the whole load package on a null key, and moves an
    unparseable value into a ``<column>__v_text`` variant column the marts never read.
    Timestamps that pass arrive at dlt parsed: dlt's own coercion of an ISO string
    (pendulum, per value) was a third of normalize's time on call rows. Only strings
    with an offset are replaced, so naive ones keep dlt's reading of them; the
    cursor column keeps the vendor's string (its stored state compares strings).
    """
    import logging

    from sources._shared.http import record_skip

    log = logging.getLogger("marketing_etl")
    for resource in source.resources.values():
        key = resource._hints.get("primary_key")
        keys = [key] if isinstance(key, str) else list(key or [])
        columns = resource.columns if isinstance(resource.columns, dict) else {}
        typed = {c: h.get("data_type") for c, h in columns.items() if h.get("data_type") in (*_NUMERIC, *_MOMENTS)}
        resource.add_filter(_row_filter(name, f"resource {resource.name}", keys, typed, record_skip, log, _cursor_of(resource)))
    return source


def _cursor_of(resource: Any) -> Any:
    """The resource's incremental cursor column, asked once rows flow: dlt keeps its
    incremental step after every filter and binds it when extraction starts. The
    cursor keeps the vendor's string (its stored state compares strings)."""

    def cursor() -> str | None:
        wrapper = getattr(resource, "incremental", None)
        incremental = getattr(wrapper, "incremental", None)
        return getattr(incremental, "cursor_path", None)

    return cursor


def _row_filter(name: str, where: str, keys: list[str], typed: dict[str, Any], record_skip: Any, log: Any, cursor: Any) -> Any:
    typed_columns = tuple(typed.items())
    all_timestamps = tuple(c for c, t in typed_columns if t == "timestamp")
    timestamps: list[frozenset[str]] = []  # decided at the first row (see _cursor_of)

    # A one-argument function: dlt passes a second (meta) argument to filters that take two.
    def keep(row: Any) -> bool:
        if not isinstance(row, dict):
            return True
        missing = [k for k in keys if row.get(k) in (None, "")]
        if missing:
            detail = f"row without primary key `{'`, `'.join(missing)}` skipped"
        else:
            if not timestamps:
                timestamps.append(frozenset(c for c in all_timestamps if c != cursor()))
            parse = timestamps[0]
            parsed: list[tuple[str, datetime]] = []
            bad = None
            # Once per row and typed column (most of a call's extract CPU): only
            # strings can be bad (_bad_value), and a timestamp string is parsed once.
            for column, data_type in typed_columns:
                value = row.get(column)
                if not isinstance(value, str) or not value:
                    continue
                if column in parse:
                    try:
                        moment = datetime.fromisoformat(value)
                    except ValueError:
                        pass  # a form only pendulum reads: judged below, parsed by dlt
                    else:
                        if moment.tzinfo is not None:
                            parsed.append((column, moment))
                        continue
                why = _bad_value(value, data_type)
                if why:
                    bad = (column, why)
                    break
            if bad is None:
                for column, moment in parsed:
                    row[column] = moment
                return True
            detail = f"field `{bad[0]}` = {str(row[bad[0]])[:40]!r} {bad[1]} ({typed[bad[0]]}): row skipped"
        record_skip(name, where, None, detail)
        log.warning("%s: %s: %s", name, where, detail, extra={"source": name})
        return False

    return keep


def not_in_future(source: str, endpoint: str, field: str, margin_days: float = 1.0) -> Any:
    """Filter for rows whose ``field`` is an incremental cursor: a row stamped more
    than ``margin_days`` in the future (a vendor bug, "2100-01-01") would move the
    cursor past every real row, and each later run would silently load nothing.
    Such a row is skipped and counted (ops.runs.skipped_entities), naming the field."""
    import logging
    from datetime import datetime, timedelta

    from sources._shared.http import record_skip

    def keep(row: Any) -> bool:
        value = row.get(field) if isinstance(row, dict) else None
        if not isinstance(value, str):
            return True
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return True  # not a timestamp: guard_rows judges it
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        if moment <= datetime.now(UTC) + timedelta(days=margin_days):
            return True
        detail = f"field `{field}` = {value[:40]!r} is in the future: row skipped (it would move the cursor past every real row)"
        record_skip(source, endpoint, None, detail)
        logging.getLogger("marketing_etl").warning("%s: %s: %s", source, endpoint, detail, extra={"source": source})
        return False

    return keep
