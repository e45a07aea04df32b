"""The FX feed's store: ECB-style daily euro reference rates (units of each
currency per 1 EUR) for every TARGET business day from a little before the world's
history up to its clock. No HTTP here.

Rates are a seeded random walk per currency keyed by day offsets (``World.rng``),
so the same seed gives the same rates whatever ``--now`` is, and advancing the
clock only reveals new days (published rates never change: sandbox choice; the
ECB's rare corrections are what the source's re-read lag is for).
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sandbox.world import World

BASE = "EUR"
# Rates start a little before the world's first day, so the first spend days have a
# rate at or before them (ECB: no fixing on weekends and TARGET holidays).
PRE_HISTORY_DAYS = 14
# ECB: "usually updated at around 16:00 CET" on TARGET business days. The sandbox
# publishes a day's rates at 15:00 UTC (16:00 CET; 17:00 CEST in summer is not
# modelled): before that hour, today has no rate yet.
PUBLISH_HOUR_UTC = 15
# The world's account currencies besides the base (USD, GBP: sandbox/world.py), and
# two more so a source cannot assume only the world's currencies exist; JPY has a
# large unit value, CHF sits near parity. Starting levels near the ECB's 2025 ones.
START_RATES: dict[str, Decimal] = {
    "USD": Decimal("1.0850"),
    "GBP": Decimal("0.84500"),
    "JPY": Decimal("162.50"),
    "CHF": Decimal("0.94200"),
}
NAMES = {
    "EUR": "Euro",
    "USD": "United States Dollar",
    "GBP": "British Pound",
    "JPY": "Japanese Yen",
    "CHF": "Swiss Franc",
}
DAILY_VOLATILITY = 0.004  # one standard deviation of a day's relative move


def significant(value: float, digits: int = 5) -> Decimal:
    """Round like the ECB's reference rates: 5 significant digits (1.0921, 157.12)."""
    exponent = math.floor(math.log10(abs(value))) + 1
    return Decimal(str(round(value, digits - exponent)))


def easter(year: int) -> date:
    """Gregorian Easter Sunday (anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    l = (32 + 2 * e + 2 * i - h - k) % 7  # noqa: E741 - the algorithm's own name
    m = (a + 11 * h + 22 * l) // 451
    month, day = divmod(h + l - 7 * m + 114, 31)
    return date(year, month, day + 1)


def is_business_day(day: date) -> bool:
    """A TARGET2 business day: no fixing on weekends, New Year's Day, Good Friday,
    Easter Monday, 1 May, 25 and 26 December (ECB calendar)."""
    if day.weekday() >= 5:
        return False
    if (day.month, day.day) in ((1, 1), (5, 1), (12, 25), (12, 26)):
        return False
    sunday = easter(day.year)
    return day not in (sunday - timedelta(days=2), sunday + timedelta(days=1))


class FxStore:
    def __init__(self, world: World) -> None:
        self.world = world
        self.first_offset = -PRE_HISTORY_DAYS
        # offset -> {currency: units per EUR}, the walk's level on every calendar day
        # (business or not), extended on demand.
        self._levels: list[dict[str, float]] = []

    # ------------------------------------------------------------------ the walk
    def _level(self, offset: int) -> dict[str, float]:
        index = offset - self.first_offset
        while len(self._levels) <= index:
            day = self.first_offset + len(self._levels)
            previous = self._levels[-1] if self._levels else {c: float(v) for c, v in START_RATES.items()}
            self._levels.append(
                {c: previous[c] * math.exp(self.world.rng("fx", c, day).gauss(0.0, DAILY_VOLATILITY)) for c in START_RATES}
            )
        return self._levels[index]

    def rates_on(self, day: date) -> dict[str, Decimal]:
        """Units per 1 EUR on ``day`` (any day; whether it is published is separate)."""
        return {c: significant(v) for c, v in self._level(self.world.day_offset(day)).items()}

    # --------------------------------------------------------------- visibility
    @property
    def first_day(self) -> date:
        return self.world.day(self.first_offset)

    def last_published(self, now: datetime | None = None) -> date:
        """The last day whose rates are out at ``now`` (a business day or not)."""
        now = (now or self.world.now).astimezone(UTC)
        return now.date() if now.hour >= PUBLISH_HOUR_UTC else now.date() - timedelta(days=1)

    def published_days(self, start: date, end: date) -> list[date]:
        """Business days in [start, end] whose rates are out by the world's clock."""
        first, last = max(start, self.first_day), min(end, self.last_published())
        days, day = [], first
        while day <= last:
            if is_business_day(day):
                days.append(day)
            day += timedelta(days=1)
        return days

    def currencies(self) -> list[str]:
        return sorted([BASE, *START_RATES])

    def quotes(self, day: date, base: str = BASE, symbols: list[str] | None = None) -> dict[str, Decimal]:
        """The rates of ``day`` against ``base`` (a cross through EUR for another
        base, rounded like the rest), restricted to ``symbols``, without the base."""
        per_eur = {BASE: Decimal(1), **self.rates_on(day)}
        out = {}
        for currency in sorted(per_eur):
            if currency == base or (symbols and currency not in symbols):
                continue
            value = per_eur[currency] if base == BASE else significant(float(per_eur[currency] / per_eur[base]))
            out[currency] = value
        return out

    # -------------------------------------------------------------------- truth
    def truth(self) -> dict[str, Any]:
        """What a correct pipeline ends with after loading everything published: one
        row per (business day, currency), the base included at rate 1."""
        days = self.published_days(self.first_day, self.world.now.date())
        sums: dict[str, Decimal] = {c: Decimal(0) for c in self.currencies()}
        for day in days:
            sums[BASE] += 1
            for currency, rate in self.rates_on(day).items():
                sums[currency] += rate
        return {
            "rates": {
                "count": len(days) * len(self.currencies()),
                "days": len(days),
                "first_day": days[0].isoformat() if days else None,
                "last_day": days[-1].isoformat() if days else None,
                "currencies": self.currencies(),
                "sum_rate_by_currency": {c: format(v, "f") for c, v in sums.items()},
            }
        }
