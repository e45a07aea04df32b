"""Retreaver's store: the company, its campaigns, affiliates, targets, numbers and
the call log, with no HTTP in sight.

Small catalogues (campaigns, affiliates, targets, numbers) are plain Python lists.
Calls can reach a million rows at --scale 100, so they live in an sqlite file
(deleted in ``close()``), bulk-inserted from a per-day generator. Only what is
queried, sorted or summed is stored; the cosmetic detail of a call (zip, IVR
times, fired pixels...) is re-derived at render time from ``world.rng(uuid)``.

Time model (a pure function of seed, scale and ``now``):
- a call is created at ``created_ms`` and shows up in the log once its conversion
  rules have run the first time, at ``visible_ms`` (end of call + a few seconds);
- some calls convert at ``converted_ms`` (minutes to ~3 days later); until
  ``converted_ms <= now`` they show ``converted: false`` and no revenue/payout;
- ``updated_ms`` is materialised for the current ``now`` (``converted_ms`` once
  converted, else ``visible_ms``) so ``sort_by=updated_at`` can use an index.
  Because ``updated_ms >= visible_ms``, ``updated_ms <= now`` means "visible".
"""

from __future__ import annotations

import bisect
import os
import sqlite3
import tempfile
import threading
import uuid as uuidlib
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sandbox.world import World

CALLS_PER_DAY = 170  # x scale
COMPANY_ID = 4417
API_KEY = "sandbox-retreaver-key-7f3c9a2e51d04b6b"
EASTERN = ZoneInfo("America/New_York")  # the company's zone; only used to format target timestamps

# Call tables as generated for a world (seed, scale, clock), copied into a later
# store of the same world instead of generated again: the tests reset the sandbox to
# a few worlds hundreds of times (a scale-1 table takes ~0.16 s to generate and
# index, ~0.003 s to copy). Only small worlds are kept, in memory, a few at a time.
_TEMPLATES: OrderedDict[tuple[Any, ...], sqlite3.Connection] = OrderedDict()
_TEMPLATES_LOCK = threading.Lock()
TEMPLATE_MAX_CALLS = 50_000  # about scale 5
TEMPLATES_KEPT = 4

_CITIES = [
    ("NC", "Rockingham", "28379", "US"), ("CO", "Colorado Springs", "80920", "US"), ("NY", "Buffalo", "14201", "US"),
    ("TX", "Austin", "73301", "US"), ("CA", "Fresno", "93650", "US"), ("FL", "Tampa", "33601", "US"),
    ("WA", "Spokane", "99201", "US"), ("ON", "Toronto", None, "CA"), ("BC", "Vancouver", None, "CA"),
]
_CAMPAIGN_WORDS = ["Sales", "Support", "Dealers", "Rentals", "Repairs", "Warranty", "Catalog", "Events", "Trade-In", "Outlet"]
_PEOPLE = ["Taylor Anderson", "Jordan Lee", "Casey Morgan", "Riley Chen", "Avery Patel", "Quinn Novak", "Drew Silva"]
_AFFILIATE_COMPANIES = ["Acme Leads", "CallBoost", "Peak Media", "Trailhead Partners", "Northstar Ads", "Basecamp Digital"]
_WEBHOOKS = ["Test Webhook", "Webhook 1", "Webhook 2", "CRM Sync"]
# utm_source a call reports for each kind of traffic.
_SOURCES = {"marin_social": ["facebook", "instagram", "facebook"], "listenloop": ["listenloop", "linkedin"]}
_UNATTRIBUTED_SOURCES = {"organic": "google", "newsletter": "inboxfirst", "spring-sale-typo": "facebook", "(not set)": "(not set)"}

# --------------------------------------------------------------------- formatting


def ms_of(moment: datetime) -> int:
    return int(round(moment.timestamp() * 1000))


def dt_of(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


# Timestamps are written from integer arithmetic and small tables: a page of calls
# carries about a thousand of them, and datetime + isoformat cost ~2 us each. The
# text is dt_of(ms).strftime/isoformat's, character for character (ms >= 0).
_EPOCH = date(1970, 1, 1)
_DAY_TEXT: dict[int, str] = {}
_HMS = [f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)]
_MILLIS = [f".{i:03d}Z" for i in range(1000)]


def _day_text(day: int) -> str:
    text = _DAY_TEXT.get(day)
    if text is None:
        text = _DAY_TEXT[day] = (_EPOCH + timedelta(days=day)).isoformat()
    return text


def fmt_z(ms: int | None) -> str | None:
    """v1 calls, campaigns, affiliates, numbers, company: ``2012-04-29T12:29:40Z``."""
    if ms is None:
        return None
    day, ms = divmod(ms, 86_400_000)
    return f"{_DAY_TEXT.get(day) or _day_text(day)}T{_HMS[ms // 1000]}Z"


def fmt_zms(ms: int | None) -> str | None:
    """v2 calls: ``2024-11-04T16:52:18.034Z``."""
    if ms is None:
        return None
    day, ms = divmod(ms, 86_400_000)
    second, milli = divmod(ms, 1000)
    return f"{_DAY_TEXT.get(day) or _day_text(day)}T{_HMS[second]}{_MILLIS[milli]}"


def fmt_offset(ms: int) -> str:
    """Targets: ``2014-08-14T20:46:01.158-04:00`` (company zone, with offset)."""
    return dt_of(ms).astimezone(EASTERN).isoformat(timespec="milliseconds")


def money(cents: int | None) -> float | None:
    """A JSON number with at most two decimals (``5.0``, ``37.5``): the v2 example's type."""
    return None if cents is None else round(cents / 100, 2)


def money_str(cents: int | None) -> str:
    """Exact decimal string like the example's ``"0.08"`` / ``"-0.08"``; truth() uses it too.
    Integer arithmetic: the same text as ``f"{Decimal(cents) / 100:.2f}"``, faster."""
    cents = cents or 0
    if cents < 0:
        return f"-{-cents // 100}.{-cents % 100:02d}"
    return f"{cents // 100}.{cents % 100:02d}"


# ----------------------------------------------------------------------- catalogue


@dataclass(frozen=True)
class Campaign:
    id: int
    cid: str
    name: str
    created_ms: int
    updated_ms: int
    revenue_c: int  # what a converted call earns (cents)
    payout_c: int  # what the affiliate gets for it (cents)
    weight: float


@dataclass(frozen=True)
class Affiliate:
    id: int
    afid: str
    first_name: str
    last_name: str
    company_name: str | None
    created_ms: int
    updated_ms: int


@dataclass(frozen=True)
class Target:
    id: int
    tid: str | None
    name: str
    number: str
    created_ms: int
    updated_ms: int
    object_key: str


@dataclass(frozen=True)
class Number:
    id: int
    number: str
    campaign: int  # index into campaigns
    affiliate: int | None  # index into affiliates
    sid: str | None
    created_ms: int
    updated_ms: int
    weight: float


@dataclass(frozen=True)
class CallFilter:
    """The call-log query parameters, already validated."""

    start_ms: int | None = None  # inclusive
    end_ms: int | None = None  # exclusive
    caller: str | None = None
    campaign: int | None = None
    affiliate: int | None = None
    target: int | None = None
    sid: str | None = None


_CALL_COLUMNS = (
    "uuid, day, created_ms, visible_ms, converted_ms, updated_ms, number_idx, campaign_idx, affiliate_idx, "
    "target_idx, caller, total_duration, dialed_duration, revenue_c, payout_c, cost_c, utm_source, utm_campaign, email"
)

_CALL_NAMES = [c.strip() for c in _CALL_COLUMNS.split(",")]


class RetreaverStore:
    def __init__(self, world: World) -> None:
        self.world = world
        self.company_created_ms = ms_of(world.start - timedelta(days=900))
        self.campaigns = self._make_campaigns()
        self.affiliates = self._make_affiliates()
        self.targets = self._make_targets()
        self.numbers = self._make_numbers()
        self._campaign_by_cid = {c.cid: i for i, c in enumerate(self.campaigns)}
        self._affiliate_by_afid = {a.afid: i for i, a in enumerate(self.affiliates)}
        self._target_by_tid = {t.tid: i for i, t in enumerate(self.targets) if t.tid}
        # Both caches are valid until the data changes, i.e. until the next advance().
        self._count_cache: dict[tuple[Any, ...], int] = {}
        # (filter, sort, direction, offset) -> (sort value, id) of the row just before
        # ``offset``: lets the next page of a walk seek instead of OFFSET-scanning a
        # million rows, while answering exactly what OFFSET would.
        self._cursors: dict[tuple[Any, ...], tuple[int, int]] = {}
        fd, self.path = tempfile.mkstemp(prefix="sandbox-retreaver-", suffix=".sqlite")
        os.close(fd)
        # The server calls us from its request threads, always under the emulator lock.
        self.db = sqlite3.connect(self.path, check_same_thread=False)
        self.db.executescript(
            """
            PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA temp_store=MEMORY;
            CREATE TABLE calls (
                id INTEGER PRIMARY KEY, uuid TEXT NOT NULL, day INTEGER NOT NULL,
                created_ms INTEGER NOT NULL, visible_ms INTEGER NOT NULL, converted_ms INTEGER,
                updated_ms INTEGER NOT NULL, number_idx INTEGER NOT NULL, campaign_idx INTEGER NOT NULL,
                affiliate_idx INTEGER, target_idx INTEGER, caller TEXT NOT NULL,
                total_duration INTEGER NOT NULL, dialed_duration INTEGER NOT NULL,
                revenue_c INTEGER, payout_c INTEGER, cost_c INTEGER NOT NULL,
                utm_source TEXT, utm_campaign TEXT, email TEXT
            );
            """
        )
        self.generated_through = -1  # last day offset whose calls are in the table
        key = (world.seed, world.scale, world.now)
        with _TEMPLATES_LOCK:
            template = _TEMPLATES.get(key)
            if template is not None:
                _TEMPLATES.move_to_end(key)
                template.backup(self.db)
                self.generated_through = world.today_offset
                return
        self._generate_days(0, world.today_offset, world.now)
        # Indexes after the bulk insert: much faster than maintaining them row by row.
        self.db.executescript(
            """
            CREATE UNIQUE INDEX calls_uuid ON calls(uuid);
            CREATE INDEX calls_created ON calls(created_ms);
            CREATE INDEX calls_updated ON calls(updated_ms);
            CREATE INDEX calls_converted ON calls(converted_ms) WHERE converted_ms IS NOT NULL;
            """
        )
        self.db.commit()
        if self.db.execute("SELECT COUNT(*) FROM calls").fetchone()[0] <= TEMPLATE_MAX_CALLS:
            template = sqlite3.connect(":memory:", check_same_thread=False)
            self.db.backup(template)
            with _TEMPLATES_LOCK:
                _TEMPLATES[key] = template
                while len(_TEMPLATES) > TEMPLATES_KEPT:
                    _TEMPLATES.popitem(last=False)[1].close()

    def close(self) -> None:
        self.db.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    # ---------------------------------------------------------------- catalogue
    def _past_ms(self, rng: Any, low_days: int, high_days: int) -> int:
        """A moment ``low_days``..``high_days`` days before world.start (catalogue objects predate the history)."""
        return ms_of(self.world.start) - int(rng.uniform(low_days, high_days) * 86_400_000)

    def _make_campaigns(self) -> list[Campaign]:
        out = []
        for i in range(self.world.scaled_sqrt(20)):
            rng = self.world.rng("retreaver-campaign", i)
            created = self._past_ms(rng, 30, 700)
            revenue = rng.choice([2500, 3000, 4000, 4500, 5000, 6000, 7500])
            out.append(
                Campaign(
                    id=9800 + i * 3 + 1,
                    cid=f"{i + 1:04d}",
                    name=f"Acme {rng.choice(_CAMPAIGN_WORDS)} Line #{i + 1}",
                    created_ms=created,
                    updated_ms=created + int(rng.uniform(0, 25) * 86_400_000),
                    revenue_c=revenue,
                    payout_c=revenue * rng.choice([40, 50, 60]) // 100,
                    weight=rng.lognormvariate(0, 0.6),
                )
            )
        return out

    def _make_affiliates(self) -> list[Affiliate]:
        out = []
        for i in range(self.world.scaled_sqrt(12)):
            rng = self.world.rng("retreaver-affiliate", i)
            first, last = rng.choice(_PEOPLE).split(" ")
            created = self._past_ms(rng, 30, 600)
            out.append(
                Affiliate(
                    id=3300 + i + 1,
                    afid=f"{i + 1:05d}",
                    first_name=first,
                    last_name=last,
                    company_name=rng.choice(_AFFILIATE_COMPANIES + [None]),
                    created_ms=created,
                    updated_ms=created + int(rng.uniform(0, 20) * 86_400_000),
                )
            )
        return out

    def _make_targets(self) -> list[Target]:
        out = []
        for i in range(self.world.scaled_sqrt(15)):
            rng = self.world.rng("retreaver-target", i)
            created = self._past_ms(rng, 30, 800)
            phone = f"+1{rng.randint(201, 989)}{rng.randint(2000000, 9999999)}"
            out.append(
                Target(
                    id=27400 + i * 7 + 9,
                    tid=f"T{i + 1:03d}" if rng.random() < 0.6 else None,
                    name=f"{rng.choice(_PEOPLE)} - {rng.choice(_CAMPAIGN_WORDS)} - {phone}",
                    number=phone,
                    created_ms=created,
                    updated_ms=created + int(rng.uniform(0, 25) * 86_400_000),
                    object_key=f"{rng.getrandbits(256):064x}",
                )
            )
        return out

    def _make_numbers(self) -> list[Number]:
        out = []
        for i in range(self.world.scaled_sqrt(40)):
            rng = self.world.rng("retreaver-number", i)
            created = self._past_ms(rng, 1, 500)
            affiliate = rng.randrange(len(self.affiliates)) if rng.random() < 0.7 else None
            out.append(
                Number(
                    id=4906000 + i * 11 + 92,
                    number=f"+1888{rng.randint(2000000, 9999999)}",
                    campaign=i % len(self.campaigns),  # every campaign gets a number
                    affiliate=affiliate,
                    sid=rng.choice(["superaffiliate", "fb-1", "ll-2", None, None]) if affiliate is not None else None,
                    created_ms=created,
                    updated_ms=created + int(rng.uniform(0, 1) * 86_400_000),
                    weight=self.campaigns[i % len(self.campaigns)].weight * rng.uniform(0.3, 1.0),
                )
            )
        return out

    def campaign_index(self, cid: str) -> int | None:
        return self._campaign_by_cid.get(cid)

    def campaign_index_by_id(self, internal_id: str) -> int | None:
        return next((i for i, c in enumerate(self.campaigns) if str(c.id) == internal_id), None)

    def affiliate_index(self, afid: str) -> int | None:
        return self._affiliate_by_afid.get(afid)

    def affiliate_index_by_id(self, internal_id: str) -> int | None:
        return next((i for i, a in enumerate(self.affiliates) if str(a.id) == internal_id), None)

    def target_index(self, tid: str) -> int | None:
        return self._target_by_tid.get(tid)

    def target_index_by_id(self, internal_id: str) -> int | None:
        return next((i for i, t in enumerate(self.targets) if str(t.id) == internal_id), None)

    def number_index_by_id(self, internal_id: str) -> int | None:
        return next((i for i, n in enumerate(self.numbers) if str(n.id) == internal_id), None)

    # -------------------------------------------------------------------- calls
    def _utm_table(self, day: int) -> tuple[list[Any], list[float]]:
        """Ad campaigns alive on ``day`` and their cumulative weights."""
        alive = [c for c in self.world.ad_campaigns if c.created_day <= day]
        cumulative, total = [], 0.0
        for c in alive:
            total += self.world.rng("retreaver-utm-weight", c.platform, c.id).lognormvariate(0, 0.8)
            cumulative.append(total)
        return alive, cumulative

    def _day_calls(self, day: int) -> Iterator[tuple[Any, ...]]:
        """Every call created on day offset ``day`` (whole day, visible or not yet)."""
        world = self.world
        rng = world.rng("retreaver-calls", day)
        weekday = world.day(day).weekday()
        n = max(0, int(round(CALLS_PER_DAY * world.scale * (0.8 if weekday >= 5 else 1.08) * rng.uniform(0.85, 1.15))))
        day_ms = ms_of(world.at(day))
        alive, cumulative = self._utm_table(day)
        number_cum, total = [], 0.0
        for num in self.numbers:
            total += num.weight
            number_cum.append(total)
        emails = world.contact_emails
        created = sorted(day_ms + rng.randrange(86_400_000) for _ in range(n))
        for created_ms in created:
            call_uuid = str(uuidlib.UUID(int=rng.getrandbits(128), version=4))
            number_idx = min(bisect.bisect(number_cum, rng.random() * total), len(self.numbers) - 1)
            number = self.numbers[number_idx]
            campaign = self.campaigns[number.campaign]
            connected = rng.random() < 0.78
            ivr_hold = rng.randint(4, 45)
            dialed = int(rng.expovariate(1 / 240)) + 5 if connected else 0
            total_duration = ivr_hold + dialed
            visible_ms = created_ms + (total_duration + rng.randint(5, 30)) * 1000
            converted_ms = revenue_c = payout_c = None
            if connected and rng.random() < 0.3:
                # Conversion criteria fire late: minutes to ~3 days after the call.
                converted_ms = visible_ms + int(rng.uniform(60, 3 * 86_400) * 1000)
                revenue_c = campaign.revenue_c
                payout_c = campaign.payout_c if number.affiliate is not None else 0
            billable = max(1, -(-total_duration // 60))
            cost_c = 3 + 5 * billable
            utm_source = utm_campaign = email = None
            roll = rng.random()
            if roll < 0.85:
                if alive and rng.random() < 0.85:
                    ad = alive[min(bisect.bisect(cumulative, rng.random() * cumulative[-1]), len(alive) - 1)]
                    utm_campaign, utm_source = ad.utm_value, rng.choice(_SOURCES[ad.platform])
                else:
                    utm_campaign = rng.choice(World.UNATTRIBUTED_UTMS)
                    utm_source = _UNATTRIBUTED_SOURCES.get(utm_campaign, "(not set)")
            if rng.random() < 0.1:
                email = rng.choice(emails)
            target_idx = rng.randrange(len(self.targets)) if connected else None
            caller = f"+1{rng.randint(201, 989)}{rng.randint(2000000, 9999999)}"
            yield (
                call_uuid, day, created_ms, visible_ms, converted_ms, visible_ms, number_idx, number.campaign,
                number.affiliate, target_idx, caller, total_duration, dialed, revenue_c, payout_c, cost_c,
                utm_source, utm_campaign, email,
            )

    def _generate_days(self, first: int, last: int, now: datetime) -> None:
        last_id = self.db.execute("SELECT COALESCE(MAX(id), 0) FROM calls").fetchone()[0]
        rows = (row for day in range(first, last + 1) for row in self._day_calls(day))
        self.db.executemany(f"INSERT INTO calls ({_CALL_COLUMNS}) VALUES ({','.join('?' * 19)})", rows)
        self.generated_through = max(self.generated_through, last)
        now_ms = ms_of(now)
        self.db.execute(
            "UPDATE calls SET updated_ms = converted_ms WHERE id > ? AND converted_ms <= ?",
            (last_id, now_ms),
        )

    def advance(self, old_now: datetime, new_now: datetime) -> None:
        """New days' calls join the table; conversions due in (old, new] become visible."""
        new_last = self.world.day_offset(new_now)
        if new_last > self.generated_through:
            self._generate_days(self.generated_through + 1, new_last, new_now)
        self.db.execute(
            "UPDATE calls SET updated_ms = converted_ms WHERE converted_ms > ? AND converted_ms <= ?",
            (ms_of(old_now), ms_of(new_now)),
        )
        self.db.commit()
        self._count_cache.clear()
        self._cursors.clear()

    # ------------------------------------------------------------------ queries
    @property
    def now_ms(self) -> int:
        return ms_of(self.world.now)

    def _where(self, f: CallFilter, visible_bound: int | None = None) -> tuple[str, list[Any]]:
        clauses, args = ["updated_ms <= ?"], [self.now_ms if visible_bound is None else visible_bound]
        for column, op, value in (
            ("created_ms", ">=", f.start_ms),
            ("created_ms", "<", f.end_ms),
            ("caller", "=", f.caller),
            ("campaign_idx", "=", f.campaign),
            ("affiliate_idx", "=", f.affiliate),
            ("target_idx", "=", f.target),
        ):
            if value is not None:
                clauses.append(f"{column} {op} ?")
                args.append(value)
        if f.sid is not None:
            sids = [i for i, n in enumerate(self.numbers) if n.sid == f.sid] or [-1]
            clauses.append(f"number_idx IN ({','.join(map(str, sids))})")
        return " AND ".join(clauses), args

    def count_calls(self, f: CallFilter) -> int:
        key = (f, self.now_ms)
        if key not in self._count_cache:
            where, args = self._where(f)
            self._count_cache[key] = self.db.execute(f"SELECT COUNT(*) FROM calls WHERE {where}", args).fetchone()[0]
        return self._count_cache[key]

    def list_calls(self, f: CallFilter, sort_by: str, descending: bool, offset: int, limit: int) -> list[dict[str, Any]]:
        column = "updated_ms" if sort_by == "updated_at" else "created_ms"
        direction = "DESC" if descending else "ASC"
        key = (f, column, direction, offset)
        cursor = self._cursors.get(key)
        if cursor is None:
            where, args = self._where(f)
        else:
            # Seek. The row value alone does not bound sqlite's index range (it ranges
            # on one bound of the column: the filter's), so each page would scan
            # from the top; the cursor's value, folded into that bound, starts the
            # range at the cursor. Same rows: the row value implies the bound.
            value = cursor[0]
            bounded = f
            if column == "created_ms" and descending:
                bounded = replace(f, end_ms=value + 1 if f.end_ms is None else min(f.end_ms, value + 1))
            elif column == "created_ms":
                bounded = replace(f, start_ms=value if f.start_ms is None else max(f.start_ms, value))
            where, args = self._where(bounded, min(self.now_ms, value) if column == "updated_ms" and descending else None)
            if column == "updated_ms" and not descending:
                where += " AND updated_ms >= ?"
                args.append(value)
            where += f" AND ({column}, id) {'<' if descending else '>'} (?, ?)"
            args += list(cursor)
        sql = (
            f"SELECT {column}, id, {_CALL_COLUMNS} FROM calls WHERE {where} "
            f"ORDER BY {column} {direction}, id {direction} LIMIT ? OFFSET ?"
        )
        rows = self.db.execute(sql, args + [limit, 0 if cursor is not None else offset]).fetchall()
        if rows:
            if len(self._cursors) > 50_000:
                self._cursors.clear()
            self._cursors[(f, column, direction, offset + len(rows))] = (rows[-1][0], rows[-1][1])
        return [self._row(r[2:]) for r in rows]

    def get_call(self, call_uuid: str) -> dict[str, Any] | None:
        row = self.db.execute(
            f"SELECT {_CALL_COLUMNS} FROM calls WHERE uuid = ? AND updated_ms <= ?", (call_uuid, self.now_ms)
        ).fetchone()
        return self._row(row) if row else None

    def _row(self, r: tuple[Any, ...]) -> dict[str, Any]:
        call = dict(zip(_CALL_NAMES, r))
        call["converted"] = call["converted_ms"] is not None and call["converted_ms"] <= self.now_ms
        return call

    # ------------------------------------------------------------------ reports
    FACETS = {
        "daily": "day", "campaign": "campaign_idx", "publisher": "affiliate_idx", "buyer": "target_idx",
        "number": "number_idx", "tag:utm_campaign": "utm_campaign", "tag:utm_source": "utm_source",
    }
    # Tags whose values the tag_value report indexes (doc: "Not all tag values are indexed").
    INDEXED_TAGS = ("utm_campaign", "utm_source")

    def report(self, facet: str, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
        """Aggregates of visible calls created in [start, end), one row per facet value."""
        return self._aggregate(self.FACETS[facet], self.FACETS[facet], start_ms, end_ms)

    def report_tag_keys(self, start_ms: int, end_ms: int) -> list[tuple[str, dict[str, Any]]]:
        """tag_value facet without a key: one row per indexed tag, over calls carrying it."""
        out = []
        for key in self.INDEXED_TAGS:
            rows = self._aggregate("'all'", key, start_ms, end_ms)  # a constant: one group
            if rows:
                out.append((key, rows[0]))
        return out

    def _aggregate(self, column: str, present: str, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
        """GROUP BY ``column`` over visible calls in [start, end) whose ``present`` is not null."""
        now = self.now_ms
        sql = f"""
            SELECT {column}, COUNT(*),
                   SUM(CASE WHEN converted_ms <= ? THEN 1 ELSE 0 END),
                   SUM(CASE WHEN converted_ms <= ? THEN revenue_c ELSE 0 END),
                   SUM(CASE WHEN converted_ms <= ? THEN payout_c ELSE 0 END),
                   SUM(cost_c), SUM(total_duration), SUM(dialed_duration),
                   SUM(CASE WHEN target_idx IS NOT NULL THEN 1 ELSE 0 END)
            FROM calls WHERE updated_ms <= ? AND created_ms >= ? AND created_ms < ? AND {present} IS NOT NULL
            GROUP BY {column} ORDER BY {column}
        """
        out = []
        for key, count, converted, revenue, payout, cost, duration, dialed, connected in self.db.execute(
            sql, (now, now, now, now, start_ms, end_ms)
        ):
            out.append(
                {
                    "key": key, "count": count, "converted": converted, "revenue_c": revenue, "payout_c": payout,
                    "cost_c": cost, "duration": duration, "dialed": dialed, "connected": connected,
                }
            )
        return out

    # -------------------------------------------------------------------- truth
    def truth(self) -> dict[str, Any]:
        now = self.now_ms
        visible = "updated_ms <= ?"
        conv = "converted_ms <= ?"
        count, converted, revenue, payout, cost, max_updated = self.db.execute(
            f"""SELECT COUNT(*), SUM(CASE WHEN {conv} THEN 1 ELSE 0 END),
                       SUM(CASE WHEN {conv} THEN revenue_c ELSE 0 END), SUM(CASE WHEN {conv} THEN payout_c ELSE 0 END),
                       SUM(cost_c), MAX(updated_ms)
                FROM calls WHERE {visible}""",
            (now, now, now, now),
        ).fetchone()
        by_day: dict[str, dict[str, Any]] = {}
        for day, n, c, r, p, k in self.db.execute(
            f"""SELECT day, COUNT(*), SUM(CASE WHEN {conv} THEN 1 ELSE 0 END),
                       SUM(CASE WHEN {conv} THEN revenue_c ELSE 0 END), SUM(CASE WHEN {conv} THEN payout_c ELSE 0 END),
                       SUM(cost_c)
                FROM calls WHERE {visible} GROUP BY day ORDER BY day""",
            (now, now, now, now),
        ):
            by_day[self.world.day(day).isoformat()] = {"count": n, "converted": c, "revenue": money_str(r), "payout": money_str(p), "cost": money_str(k)}
        campaign_days = self.db.execute(
            f"SELECT COUNT(*) FROM (SELECT DISTINCT day, campaign_idx FROM calls WHERE {visible})", (now,)
        ).fetchone()[0]
        tagged = self.db.execute(f"SELECT COUNT(*) FROM calls WHERE {visible} AND utm_campaign IS NOT NULL", (now,)).fetchone()[0]
        sums = {"total_calls": count, "converted": converted or 0, "sum_revenue": money_str(revenue), "sum_payout": money_str(payout), "sum_cost": money_str(cost)}
        return {
            "calls": {
                "count": count,
                "converted": converted or 0,
                "sum_revenue": money_str(revenue),
                "sum_payout": money_str(payout),
                "sum_cost": money_str(cost),
                "max_updated_at": fmt_zms(max_updated),
                "with_utm_campaign": tagged,
            },
            "calls_by_day": by_day,
            "campaigns": {"count": len(self.campaigns)},
            "affiliates": {"count": len(self.affiliates)},
            "targets": {"count": len(self.targets)},
            "numbers": {"count": len(self.numbers)},
            "report_daily": {"count": len(by_day), **sums},
            "report_campaign_daily": {"count": campaign_days, **sums},
        }


def day_bounds_ms(start: date, end: date) -> tuple[int, int]:
    """UTC midnights of two dates: reports count days in UTC."""
    def to_ms(d: date) -> int:
        return ms_of(datetime.combine(d, datetime.min.time(), UTC))

    return to_ms(start), to_ms(end)
