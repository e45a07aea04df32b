"""Freshness: per source and table, when rows last landed, the newest cursor value,
and whether it is stale.

A run can be green and still load nothing new for days (a vendor that stopped
sending, a cursor stuck in the future, a filter that matches nothing). So
staleness is judged on the DATA: the newest value of each table's cursor column
(the vendor's own timestamps and report days), plus the last successful run per
source from ``ops.runs``. Tables with no time column of their own (catalogues,
dimensions) are shown with their last load but are not judged.

Thresholds: ``[ops.freshness] stale_after_hours`` (default 48) and per table
``[ops.freshness.tables] "retreaver.calls" = 6`` (exactly as given);
``--stale-after`` overrides the default for one call. A few tables whose vendor is
slower than hourly (InboxFirst sends) have a built-in floor above the default.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import dlt

from pipelines.ops import OPS_DATASET, RUNS_TABLE
from pipelines.runner import SOURCE_NAMES
from pipelines.warehouse import make_pipeline

DEFAULT_STALE_AFTER_HOURS = 48.0
# Where each table's newest data shows. A date column counts as fresh until the
# END of that day (UTC; Marin's days are the account's local days, a few hours off).
CURSOR_COLUMNS: dict[str, dict[str, str]] = {
    "listenloop": {"campaigns": "updated_at"},
    "marin_social": {"campaign_stats_daily": "date", "ad_stats_daily": "date"},
    "inboxfirst": {"campaigns": "dispatch__started_at"},
    "retreaver": {"calls": "updated_at", "report_daily": "day", "report_campaign_daily": "day"},
    # Loops contacts have no time of their own that moves (looked_up_at is ours).
    "loops": {},
    "fx": {"rates": "rate_date"},
}
# Defaults per table where the vendor's own rhythm is slower than hourly runs.
DEFAULT_TABLE_THRESHOLDS: dict[str, float] = {
    # Sends go out most days, not every day (gaps of 2 days seen in the sandbox world).
    "inboxfirst.campaigns": 96.0,
    # No ECB fixing on weekends and TARGET holidays (Easter: Thursday's rate until Tuesday 16:00 CET).
    "fx.rates": 120.0,
}


@dataclass
class TableStatus:
    table: str
    rows: int
    last_loaded_at: str | None
    cursor_column: str | None
    newest_cursor: str | None
    age_hours: float | None
    stale_after_hours: float | None
    stale: bool


@dataclass
class SourceStatus:
    source: str
    last_run_at: str | None = None
    last_run_status: str | None = None
    last_success_at: str | None = None
    stale: bool = False
    reasons: list[str] = field(default_factory=list)
    tables: list[TableStatus] = field(default_factory=list)


@dataclass
class Freshness:
    checked_at: str
    sources: list[SourceStatus]
    # Sources never loaded into this warehouse (not configured here): their
    # platforms are absent from the marts. Named, not judged stale.
    absent: list[str] = field(default_factory=list)

    @property
    def stale(self) -> bool:
        return any(s.stale for s in self.sources)

    def as_json(self) -> dict[str, Any]:
        return {
            "checked_at": self.checked_at,
            "stale": self.stale,
            "sources": [asdict(s) for s in self.sources],
            "absent": list(self.absent),
        }


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        value = value if value.tzinfo else value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _as_moment(value: Any) -> datetime | None:
    """A cursor value as the UTC moment until which the data is known."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime.combine(value + timedelta(days=1), time(), tzinfo=UTC)
    text = str(value)
    if len(text) == 10:
        return datetime.combine(date.fromisoformat(text) + timedelta(days=1), time(), tzinfo=UTC)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def thresholds(stale_after_hours: float | None = None) -> tuple[float, dict[str, float]]:
    default = stale_after_hours
    if default is None:
        default = float(dlt.config.get("ops.freshness.stale_after_hours") or DEFAULT_STALE_AFTER_HOURS)
    # Built-in table thresholds are floors (a slower vendor rhythm), never stricter
    # than the default; thresholds configured per table apply as given.
    per_table = {table: max(float(default), hours) for table, hours in DEFAULT_TABLE_THRESHOLDS.items()}
    configured = dlt.config.get("ops.freshness.tables")
    if configured:
        try:
            # A toml table arrives as a mapping, an environment variable as JSON text.
            mapping = json.loads(configured) if isinstance(configured, str) else dict(configured)
            per_table.update({str(k): float(v) for k, v in mapping.items()})
        except (ValueError, TypeError, AttributeError) as exc:
            raise FreshnessConfigError(
                f"ops.freshness.tables (OPS__FRESHNESS__TABLES) must map \"<source>.<table>\" to hours, "
                f"e.g. {{\"retreaver.calls\": 6}}: {exc}"
            ) from None
    return float(default), per_table


class FreshnessConfigError(ValueError):
    pass


def _query(client: Any, sql: str) -> list[tuple]:
    with client.execute_query(sql) as cursor:
        return list(cursor.fetchall())


def check_freshness(
    warehouse: str | Path,
    sources: list[str] | None = None,
    stale_after_hours: float | None = None,
    now: datetime | None = None,
) -> Freshness:
    """Sources asked for explicitly are judged even if they never loaded; otherwise
    only the sources that have a dataset or a run in ``ops.runs`` are shown."""
    now = now or datetime.now(UTC)
    default_threshold, per_table = thresholds(stale_after_hours)
    # One connection for ops.runs and every source's dataset: a client per dataset
    # costs a dlt configuration and a database open each (~50 ms on DuckDB), and
    # this runs at the end of every published run and in every `status`.
    with make_pipeline(OPS_DATASET, warehouse).sql_client() as client:
        runs = _runs(client)
        tables = {}
        for name in sources or SOURCE_NAMES:
            with client.with_alternative_dataset_name(name):
                tables[name] = _tables(client, name, now, default_threshold, per_table)
    result, absent = [], []
    for name in sources or SOURCE_NAMES:
        status = SourceStatus(name)
        history = runs.get(name, [])
        if history:
            status.last_run_at, status.last_run_status = _iso(history[0][1]), history[0][0]
            success = next((finished for st, finished in history if st == "loaded"), None)
            status.last_success_at = _iso(success)
        status.tables = tables[name]
        if not status.tables and not history and not sources:
            absent.append(name)  # never configured here: not part of this warehouse
            continue
        last_ok = _as_moment(status.last_success_at) if status.last_success_at else None
        if last_ok is None and not status.tables:
            status.reasons.append("never loaded")
        elif last_ok is not None and (now - last_ok).total_seconds() / 3600 > default_threshold:
            status.reasons.append(f"last successful run {status.last_success_at} is older than {default_threshold:g} h")
        for table in status.tables:
            if table.stale:
                what = f"newest {table.cursor_column} {table.newest_cursor}" if table.newest_cursor else "no rows"
                status.reasons.append(f"{table.table}: {what} is older than {table.stale_after_hours:g} h")
        status.stale = bool(status.reasons)
        result.append(status)
    return Freshness(_iso(now) or "", result, absent)


def _runs(client: Any) -> dict[str, list[tuple[str, datetime]]]:
    """(status, finished_at) per source, newest first, from ops.runs (if any);
    ``client`` is a SQL client whose dataset is ops."""
    if not client.has_dataset():
        return {}
    table = client.make_qualified_table_name(RUNS_TABLE)
    try:
        rows = _query(client, f"select source, status, finished_at from {table} order by finished_at desc")
    except Exception:  # noqa: BLE001 - the dataset exists but no run was recorded yet
        return {}
    out: dict[str, list[tuple[str, datetime]]] = {}
    for source, status, finished in rows:
        out.setdefault(source, []).append((status, finished))
    return out


def _tables(client: Any, name: str, now: datetime, default: float, per_table: dict[str, float]) -> list[TableStatus]:
    """The tables of source ``name``; ``client``'s dataset is that source's."""
    tables: list[TableStatus] = []
    if not client.has_dataset():
        return []
    loads_table = client.make_qualified_table_name("_dlt_loads")
    loaded_at = dict(_query(client, f"select load_id, inserted_at from {loads_table} where status = 0"))
    # Root tables only: child tables (``x__y``) carry no load id and share their parent's freshness.
    names = [
        r[0]
        for r in _query(
            client,
            "select table_name from information_schema.columns where column_name = '_dlt_load_id' "
            f"and table_schema = '{client.dataset_name}' order by 1",
        )
        if not r[0].startswith("_dlt")
    ]
    cursors = CURSOR_COLUMNS.get(name, {})
    for table in names:
        qualified = client.make_qualified_table_name(table)
        column = cursors.get(table)
        select = f"count(*), max(_dlt_load_id){', max(' + client.escape_column_name(column) + ')' if column else ''}"
        row = _query(client, f"select {select} from {qualified}")[0]
        count, load_id = row[0], row[1]
        newest = row[2] if column else None
        threshold = per_table.get(f"{name}.{table}", default) if column else None
        moment = _as_moment(newest)
        age = max(0.0, round((now - moment).total_seconds() / 3600, 1)) if moment else None
        stale = bool(column) and (age is None or age > threshold)  # type: ignore[operator]
        tables.append(TableStatus(table, count, _iso(loaded_at.get(load_id)), column, _iso(newest), age, threshold, stale))
    return tables
