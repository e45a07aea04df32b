"""The FX emulator: Frankfurter-shaped answers of ECB-style rates, business days
only, published by the world's clock, deterministic, and advanced with it."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import requests

from sandbox.fx.models import PUBLISH_HOUR_UTC, easter, is_business_day
from sandbox.server import Sandbox


def get(sandbox, path: str, **params):
    return requests.get(sandbox.url("fx") + path, params=params, timeout=10)


def test_env_names_the_base_url_only(sandbox):
    assert sandbox.env()["SOURCES__FX__BASE_URL"] == sandbox.url("fx")
    assert not [k for k in sandbox.env() if k.startswith("SOURCES__FX__") and k != "SOURCES__FX__BASE_URL"]


def test_time_series_has_every_business_day_up_to_the_clock(sandbox):
    now = datetime.fromisoformat(sandbox.clock()["now"])
    truth = sandbox.truth("fx")["fx"]["rates"]
    body = get(sandbox, f"/{truth['first_day']}..").json()
    assert set(body) == {"amount", "base", "start_date", "end_date", "rates"}
    assert body["amount"] == 1.0 and body["base"] == "EUR"
    days = sorted(body["rates"])
    assert (body["start_date"], body["end_date"]) == (days[0], days[-1]) == (truth["first_day"], truth["last_day"])
    assert len(days) == truth["days"]
    assert all(is_business_day(date.fromisoformat(d)) for d in days)
    published = now.date() if now.hour >= PUBLISH_HOUR_UTC else now.date() - timedelta(days=1)
    assert date.fromisoformat(days[-1]) <= published
    # Every business day between the first and the last is there (no gaps but weekends/holidays).
    span = (date.fromisoformat(days[-1]) - date.fromisoformat(days[0])).days + 1
    expected = [date.fromisoformat(days[0]) + timedelta(days=i) for i in range(span)]
    assert days == [d.isoformat() for d in expected if is_business_day(d)]
    quotes = body["rates"][days[-1]]
    assert set(quotes) == set(truth["currencies"]) - {"EUR"}
    assert all(isinstance(v, float) and v > 0 for v in quotes.values())
    assert 0.5 < quotes["USD"] < 2 and 50 < quotes["JPY"] < 400


def test_windows_symbols_rebase_and_single_days(sandbox):
    last = sandbox.truth("fx")["fx"]["rates"]["last_day"]
    last_day = date.fromisoformat(last)
    week = get(sandbox, f"/{last_day - timedelta(days=6)}..{last_day}", symbols="USD,GBP").json()
    assert 4 <= len(week["rates"]) <= 5 and all(set(q) == {"USD", "GBP"} for q in week["rates"].values())
    day = get(sandbox, f"/{last}").json()
    assert day["date"] == last and day["rates"]["USD"] == week["rates"][last]["USD"]
    assert get(sandbox, "/latest").json()["date"] == last
    # A Sunday answers the Friday (or earlier) fixing.
    sunday = last_day + timedelta(days=(6 - last_day.weekday()) % 7 or 7) - timedelta(days=7)
    assert date.fromisoformat(get(sandbox, f"/{sunday}").json()["date"]) < sunday
    rebased = get(sandbox, f"/{last}", base="USD", symbols="EUR").json()
    assert rebased["base"] == "USD" and abs(rebased["rates"]["EUR"] - 1 / day["rates"]["USD"]) < 1e-3
    assert set(get(sandbox, "/currencies").json()) == {"EUR", "USD", "GBP", "JPY", "CHF"}


def test_empty_windows_unknown_currencies_and_bad_dates(sandbox):
    future = date.fromisoformat(sandbox.clock()["now"][:10]) + timedelta(days=30)
    empty = get(sandbox, f"/{future}..{future + timedelta(days=3)}")
    assert empty.status_code == 200 and empty.json()["rates"] == {}
    assert get(sandbox, "/latest", symbols="XYZ").status_code == 404
    assert get(sandbox, "/latest", base="XYZ").json() == {"message": "not found"}
    assert get(sandbox, "/2025-13-45..").status_code == 404
    assert get(sandbox, "/1999-01-04").status_code == 404  # before the first fixing


def test_advance_publishes_new_days_and_keeps_old_rates(sandbox):
    now = datetime.fromisoformat(sandbox.clock()["now"])
    before = sandbox.truth("fx")["fx"]["rates"]
    old = get(sandbox, f"/{before['first_day']}..{before['last_day']}").json()["rates"]
    sandbox.advance(7)
    after = sandbox.truth("fx")["fx"]["rates"]
    # The 7 calendar days now published: 5 business days unless a TARGET holiday falls in them.
    published = now.date() if now.hour >= PUBLISH_HOUR_UTC else now.date() - timedelta(days=1)
    new_days = [published + timedelta(days=i) for i in range(1, 8)]
    assert after["days"] == before["days"] + sum(is_business_day(d) for d in new_days)
    assert after["last_day"] > before["last_day"]
    assert get(sandbox, f"/{before['first_day']}..{before['last_day']}").json()["rates"] == old


def test_the_same_seed_gives_the_same_rates_whatever_the_clock():
    a = Sandbox(seed=3, now=datetime.fromisoformat("2026-03-10T12:00:00+00:00"), apis=["fx"])
    b = Sandbox(seed=3, now=datetime.fromisoformat("2026-05-10T12:00:00+00:00"), apis=["fx"])
    c = Sandbox(seed=4, now=datetime.fromisoformat("2026-03-10T12:00:00+00:00"), apis=["fx"])
    store_a, store_b, store_c = (s.emulators["fx"].store for s in (a, b, c))
    # Day offsets key the walk: day k of one world has the rates of day k of the other.
    assert store_a.rates_on(store_a.world.day(5)) == store_b.rates_on(store_b.world.day(5))
    assert store_a.rates_on(store_a.world.day(5)) != store_c.rates_on(store_c.world.day(5))
    assert a.truth("fx") == Sandbox(seed=3, now=datetime.fromisoformat("2026-03-10T12:00:00+00:00"), apis=["fx"]).truth("fx")


def test_target_holidays_have_no_fixing():
    assert easter(2025) == date(2025, 4, 20) and easter(2026) == date(2026, 4, 5)
    for holiday in ("2026-01-01", "2026-04-03", "2026-04-06", "2026-05-01", "2026-12-25", "2026-12-26"):
        assert not is_business_day(date.fromisoformat(holiday)), holiday
    assert is_business_day(date(2026, 4, 7)) and not is_business_day(date(2026, 4, 4))
