"""Marin Social pieces dlt does not ship: a page-number paginator that checks the
rows read against ``range.total``, statistics windows in the account's timezone and
the shaping of statistics rows."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import dlt
import pendulum
from dlt.common import jsonpath
from dlt.sources.helpers.rest_client.paginators import PageNumberPaginator
from requests import Request, Response

from sources._shared.jsonpaths import json_path
from sources._shared.schema import to_decimal

DATA = json_path("data")
NB_PAGES = json_path("range.nb_pages")
TOTAL = json_path("range.total")


class IncompleteListError(RuntimeError):
    """A list walked to its end whose rows do not add up to its ``range.total``."""


class CheckedPages(PageNumberPaginator):
    """``page`` = 1, 2, ... up to ``range.nb_pages``, every request keeping its own
    query parameters; at the end, the rows read must equal ``range.total``.

    Why not the doc's ``range.next``: as the doc's examples show, it carries only
    ``key``, ``limit`` and ``page``, so following it reads page 2+ of a query
    without ``level``/``aggregate``/dates (contract). dlt's paginator asks for page N
    itself; the count check is what dlt lacks (a short read must not pass as done).
    """

    def __init__(self, source: str = "marin_social") -> None:
        super().__init__(base_page=1, page_param="page", total_path=NB_PAGES)
        self.source = source
        self._total_path = TOTAL

    def init_request(self, request: Request) -> None:
        self.read = self.pages = 0
        self.total: int | None = None
        super().init_request(request)

    def update_state(self, response: Response, data: list[Any] | None = None) -> None:
        self.read += len(data or [])
        self.pages += 1
        totals = jsonpath.find_values(self._total_path, response.json())
        self.total = int(totals[0]) if totals and totals[0] is not None else None
        super().update_state(response, data)
        if not self.has_next_page and self.read != self.total:
            level = _query_value(response.url or "", "level")
            where = f"GET {urlsplit(response.url or '').path}" + (f" (level={level})" if level else "")
            raise IncompleteListError(
                f"{self.source}: {where}: read {self.read} rows in {self.pages} page(s) "
                f"but range.total is {self.total}: incomplete list, not loaded"
            )


def _query_value(url: str, name: str) -> str | None:
    for part in urlsplit(url).query.split("&"):
        key, _, value = part.partition("=")
        if key == name:
            return value
    return None


def has_ad_sets(campaign: dict[str, Any], networks: Iterable[str], default_src: str) -> bool:
    """Doc: ad sets exist only for Facebook campaigns (configurable networks)."""
    return str(campaign.get("src") or default_src) in set(networks)


def local_midnight(day: date, timezone: str) -> int:
    """UNIX seconds of ``day``'s midnight in ``timezone``.

    Contract: a statistics day is an account-local date and start_date/end_date are
    UNIX seconds, end exclusive; a window [midnight(D), midnight(E)) is days D..E-1."""
    return int(datetime.combine(day, time(0), tzinfo=ZoneInfo(timezone)).timestamp())


def stats_window(first_day: str | date, timezone: str, today: date | None = None) -> tuple[int, int]:
    """[first_day, tomorrow) in the account's timezone, as (start_date, end_date) seconds.

    ``tomorrow`` is the account's local today + 1: the current, partial day is
    included (it is restated on the next runs)."""
    first = first_day if isinstance(first_day, date) else date.fromisoformat(str(first_day)[:10])
    local_today = today or pendulum.now(timezone).date()
    tomorrow = local_today + timedelta(days=1)
    return local_midnight(first, timezone), local_midnight(max(tomorrow, first + timedelta(days=1)), timezone)


def restated_from(last_day: str | None, restatement_days: int, first_day: str) -> str:
    """The first day to ask for: ``restatement_days`` before the last loaded day
    (never before the configured start), or the start on a plan's first run."""
    if not last_day:
        return first_day
    return max(first_day, (date.fromisoformat(last_day[:10]) - timedelta(days=restatement_days)).isoformat())


def rename(mapping: dict[str, str]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A map step renaming the columns rest_api adds from a parent (``_campaigns_id``)."""

    def step(item: dict[str, Any]) -> dict[str, Any]:
        for old, new in mapping.items():
            if old in item:
                item[new] = item.pop(old)
        return item

    return step


def conversion_names(value: str | Sequence[str]) -> frozenset[str]:
    """CONVERSION_METRICS as a list (toml), a JSON list or a comma-separated string."""
    if isinstance(value, str):
        value = json.loads(value) if value.strip().startswith("[") else value.split(",")
    return frozenset(v.strip() for v in value if v and v.strip())


def shape_stats_row(
    row: dict[str, Any],
    account: dict[str, Any],
    conversions: Iterable[str],
    money_fields: Iterable[str],
) -> dict[str, Any]:
    """One statistics row as stored: the account's currency and timezone beside the
    figures (contract: money is in the account's currency, ``date`` is in its
    timezone), conversions summed from main_metrics, money as Decimal."""
    names = conversions if isinstance(conversions, frozenset) else frozenset(conversions)
    metrics = row.get("main_metrics") or []
    # Contract: conversions are the main_metrics entries with a configured name;
    # "number" is the count, "amount" the value. main_metrics itself is stored as
    # JSON exactly as received (its amounts keep their JSON text).
    chosen = [m for m in metrics if m.get("name") in names]
    row["conversions"] = sum(int(m.get("number") or 0) for m in chosen)
    row["conversions_value"] = sum((to_decimal(m.get("amount")) or Decimal(0) for m in chosen), Decimal(0))
    for name in money_fields:
        if name in row and name != "conversions_value":
            row[name] = to_decimal(row[name])
    row["account_id"] = account["id"]
    row["currency"] = account.get("currency")
    row["timezone"] = account.get("timezone")
    return row


def window_bounds(window: tuple[date, date], timezone: str) -> tuple[int, int]:
    """Account-local days ``[start, end)`` as the API's (start_date, end_date) seconds.

    Contract: start_date/end_date are UNIX seconds and ``end_date`` is exclusive, so
    the local midnight OF the (exclusive) end day is sent as is: days start..end-1,
    never the end day itself (no "+1 day" here, unlike ``stats_window`` whose end is
    the inclusive local today)."""
    return local_midnight(window[0], timezone), local_midnight(window[1], timezone)


class AdWalkSchedule:
    """Which campaigns' ad sets and ads this run walks (see settings.AD_DIMENSIONS_REFRESH_HOURS).

    Decided once per extraction, on first use, from the source state: every campaign
    when the last whole walk is ``refresh_hours`` old (or never happened), otherwise
    only campaigns no earlier walk has seen. The state is dlt's, so it is committed
    with the load package: a failed run walks again next time.
    """

    def __init__(self, refresh_hours: float, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        if refresh_hours < 0:
            raise ValueError(f"marin_social: ad_dimensions_refresh_hours must be >= 0, not {refresh_hours}")
        self.refresh_hours = refresh_hours
        self.now = now
        self._state: dict[str, Any] | None = None
        self._walked: set[str] = set()

    def _open(self) -> dict[str, Any]:
        if self._state is None:
            state = dlt.current.source_state().setdefault("ad_walk", {})
            last = state.get("walked_at")
            now = self.now()
            due = self.refresh_hours == 0 or last is None or (now - datetime.fromisoformat(last)).total_seconds() >= self.refresh_hours * 3600
            if due:
                state["walked_at"] = now.isoformat()
                state["campaigns"] = []
            self._state = state
            self._walked = set(state.get("campaigns") or [])
        return self._state

    def wants(self, campaign_id: Any) -> bool:
        """True (and remembered as walked) when this campaign's ads are read now."""
        state = self._open()
        key = str(campaign_id)
        if key in self._walked:
            return False
        self._walked.add(key)
        state.setdefault("campaigns", []).append(key)
        return True
