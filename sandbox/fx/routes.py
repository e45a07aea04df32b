"""The FX feed's HTTP surface (``/fx/...``), shaped like Frankfurter's documented
answers (https://frankfurter.dev; from its public docs as we know them, not checked
against the live service):

    GET /latest                  {"amount", "base", "date", "rates": {CUR: rate}}
    GET /{YYYY-MM-DD}            the same, for the last fixing at or before that day
    GET /{start}..{end}          {"amount", "base", "start_date", "end_date",
    GET /{start}..                "rates": {"YYYY-MM-DD": {CUR: rate}}}   (time series)
    GET /currencies              {CUR: name}

Query: ``base`` (alias ``from``; default EUR), ``symbols`` (alias ``to``;
comma-separated), ``amount`` (default 1). Rates are JSON numbers.

Sandbox choices (the docs do not say): an unknown currency or a malformed date
answers 404 ``{"message": "not found"}``; a time series with no fixing in it (a
weekend, a window in the future) answers 200 with empty ``rates``; a single day
before the first fixing answers 404.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Any

from sandbox.core import HTTPError, Request, Router
from sandbox.fx.models import BASE, NAMES, FxStore

SPAN = re.compile(r"^(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})?$")
DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def not_found() -> HTTPError:
    return HTTPError(404, {"message": "not found"})


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise not_found() from None


def _number(value: Decimal) -> float:
    # Frankfurter sends JSON numbers; float(Decimal) of a 5-digit rate round-trips.
    return float(value)


def build_router(store: FxStore) -> Router:
    router = Router()

    def options(request: Request) -> tuple[str, list[str] | None, Decimal]:
        base = (request.arg("base") or request.arg("from") or BASE).upper()
        raw = request.arg("symbols") or request.arg("to")
        symbols = [s.strip().upper() for s in raw.split(",") if s.strip()] if raw else None
        known = set(store.currencies())
        if base not in known or (symbols and not set(symbols) <= known):
            raise not_found()
        try:
            amount = Decimal(request.arg("amount") or "1")
        except Exception:  # noqa: BLE001 - any malformed amount
            raise HTTPError(422, {"message": "invalid amount"}) from None
        return base, symbols, amount

    def scaled(quotes: dict[str, Decimal], amount: Decimal) -> dict[str, float]:
        return {c: _number(v * amount) for c, v in quotes.items()}

    def one_day(request: Request, wanted: date) -> dict[str, Any]:
        base, symbols, amount = options(request)
        days = store.published_days(store.first_day, wanted)
        if not days:
            raise not_found()
        day = days[-1]
        return {"amount": float(amount), "base": base, "date": day.isoformat(), "rates": scaled(store.quotes(day, base, symbols), amount)}

    @router.route("GET", "/latest")
    def latest(request: Request) -> Any:
        return one_day(request, store.world.now.date())

    @router.route("GET", "/currencies")
    def currencies(request: Request) -> Any:
        return {c: NAMES[c] for c in store.currencies()}

    @router.route("GET", "/{span}")
    def by_date(request: Request) -> Any:
        span = request.params["span"]
        match = SPAN.match(span)
        if match is None:
            if not DAY.match(span):
                raise not_found()
            return one_day(request, _day(span))
        start = _day(match.group(1))
        end = _day(match.group(2)) if match.group(2) else store.world.now.date()
        base, symbols, amount = options(request)
        days = store.published_days(start, end)
        return {
            "amount": float(amount),
            "base": base,
            "start_date": (days[0] if days else start).isoformat(),
            "end_date": (days[-1] if days else end).isoformat(),
            "rates": {d.isoformat(): scaled(store.quotes(d, base, symbols), amount) for d in days},
        }

    return router
