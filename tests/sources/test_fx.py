"""FX source against the sandbox: a full load equals the feed's truth, a re-run asks
only from the last loaded day minus the lag, and every error answer fails loudly."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from pipelines.runner import Runner
from sources.fx.helpers import FxFeedError, rate_rows, windows
from sources.fx.settings import DEFAULT_LAG_DAYS
from tests.conftest import sandbox_server_of

sandbox_server = sandbox_server_of("fx")


def fx_requests(sandbox, since: int = 0) -> list[dict]:
    return sandbox.requests("fx", since=since)


def spans(requests: list[dict]) -> list[tuple[date, date]]:
    out = []
    for entry in requests:
        start, _, end = entry["path"].strip("/").partition("..")
        out.append((date.fromisoformat(start), date.fromisoformat(end)))
    return out


def assert_equals_truth(sandbox, warehouse) -> None:
    truth = sandbox.truth("fx")["fx"]["rates"]
    count, days, first, last = warehouse.query("select count(*), count(distinct rate_date), min(rate_date), max(rate_date) from fx.rates")[0]
    assert (count, days, first.isoformat(), last.isoformat()) == (truth["count"], truth["days"], truth["first_day"], truth["last_day"])
    sums = dict(warehouse.query("select currency_code, sum(rate) from fx.rates group by 1"))
    assert sums == {c: Decimal(v) for c, v in truth["sum_rate_by_currency"].items()}
    assert warehouse.scalar("select count(*) from (select rate_date, currency_code from fx.rates group by 1, 2 having count(*) > 1)") == 0


def test_full_load_equals_truth_with_decimal_rates_per_eur(sandbox, warehouse):
    (source,) = warehouse.run("fx").sources
    assert source.status == "loaded", source.message
    assert_equals_truth(sandbox, warehouse)
    types = dict(warehouse.query("select column_name, data_type from information_schema.columns where table_schema = 'fx' and table_name = 'rates'"))
    assert types["rate"] == "DECIMAL(18,8)" and types["rate_date"] == "DATE"
    # The ECB's quoting: units per 1 EUR, EUR itself stored at 1 on every day.
    assert warehouse.query("select distinct base_currency from fx.rates") == [("EUR",)]
    assert warehouse.query("select min(rate), max(rate) from fx.rates where currency_code = 'EUR'") == [(Decimal(1), Decimal(1))]
    # No rate on a weekend (ECB: TARGET business days only).
    assert warehouse.scalar("select count(*) from fx.rates where dayofweek(rate_date) in (0, 6)") == 0
    # The first run asks [today - 90 days, today] in windows of at most 90 (+7) days, back to back.
    windows = spans(fx_requests(sandbox))
    assert windows[0][0] == date.today() - timedelta(days=90)
    assert all((end - start).days < 97 for start, end in windows)
    assert all(b[0] == a[1] + timedelta(days=1) for a, b in zip(windows, windows[1:]))


def test_a_rerun_asks_only_from_the_last_loaded_day_minus_the_lag(sandbox, warehouse):
    (first,) = warehouse.run("fx").sources
    last_day = date.fromisoformat(first.cursor_after["rates.rate_date"])
    sandbox.advance(3)
    seq = fx_requests(sandbox)[-1]["seq"]
    (second,) = warehouse.run("fx").sources
    assert second.status == "loaded", second.message
    (window,) = spans(fx_requests(sandbox, since=seq))  # one short window, not the history again
    assert window[0] == last_day - timedelta(days=DEFAULT_LAG_DAYS)
    assert_equals_truth(sandbox, warehouse)  # re-read days merged, not duplicated
    assert second.cursor_after["rates.rate_date"] > first.cursor_after["rates.rate_date"]
    assert sum(second.rows.values()) < sum(first.rows.values()) / 3


def test_start_date_and_currencies_are_configuration(sandbox, warehouse, monkeypatch):
    start = date.fromisoformat(sandbox.truth("fx")["fx"]["rates"]["last_day"]) - timedelta(days=20)
    monkeypatch.setenv("SOURCES__FX__START_DATE", start.isoformat())
    monkeypatch.setenv("SOURCES__FX__CURRENCIES", "usd, GBP")
    (source,) = warehouse.run("fx").sources
    assert source.status == "loaded", source.message
    assert fx_requests(sandbox)[0]["query"] == {"symbols": "USD,GBP"}
    assert {r[0] for r in warehouse.query("select distinct currency_code from fx.rates")} == {"EUR", "USD", "GBP"}
    assert warehouse.scalar("select min(rate_date) from fx.rates") >= start


def test_throttling_and_server_errors_are_retried(sandbox, warehouse):
    sandbox.add_fault("429", api="fx", count=1, retry_after=1)
    sandbox.add_fault("503", api="fx", count=1)
    (source,) = warehouse.run("fx").sources
    assert source.status == "loaded", source.message
    assert (source.requests["throttled"], source.requests["server_errors"]) == (1, 1)
    assert_equals_truth(sandbox, warehouse)


@pytest.mark.parametrize("kind", ["404", "500"])
def test_a_persistent_error_fails_loudly_naming_endpoint_and_status(sandbox, warehouse, kind):
    sandbox.add_fault(kind, api="fx", rate=1.0, retry_after=None)
    (source,) = warehouse.run("fx").sources
    assert source.status == "failed"
    assert f"fx: GET /fx/{date.today() - timedelta(days=90)}.." in source.message
    assert f"answered {kind}" in source.message
    assert "rates" not in warehouse.tables("fx")
    assert source.cursor_after == source.cursor_before == {}


def test_an_answer_not_in_the_documented_shape_fails_loudly():
    body = {"amount": 1.0, "base": "EUR", "start_date": "2025-03-03", "end_date": "2025-03-03", "rates": {"2025-03-03": {"USD": 1.0921}}}
    rows = list(rate_rows(body, "EUR"))
    assert rows == [
        {"rate_date": "2025-03-03", "currency_code": "EUR", "base_currency": "EUR", "rate": Decimal("1")},
        {"rate_date": "2025-03-03", "currency_code": "USD", "base_currency": "EUR", "rate": Decimal("1.0921")},  # exact, not a float
    ]
    with pytest.raises(FxFeedError, match="quoted against 'USD', expected EUR"):
        list(rate_rows({**body, "base": "USD"}, "EUR"))
    with pytest.raises(FxFeedError, match="amount of 100"):
        list(rate_rows({**body, "amount": 100}, "EUR"))
    with pytest.raises(FxFeedError, match="`rates` object"):
        list(rate_rows({"message": "not found"}, "EUR"))
    # One unusable quote is skipped (and counted by the run), the others load.
    for bad in (None, "n/a", 0, -1.5, "NaN", "Infinity"):
        rows = list(rate_rows({**body, "rates": {"2025-03-03": {"USD": bad, "GBP": 0.85}}}, "EUR"))
        assert [r["currency_code"] for r in rows] == ["EUR", "GBP"], bad


def test_windows_cover_the_range_back_to_back_without_a_short_tail():
    d = date(2025, 1, 1)
    assert windows(d, d + timedelta(days=9), 90, 8) == [(d, d + timedelta(days=9))]
    cut = windows(d, d + timedelta(days=199), 90, 8)
    assert cut == [(d, d + timedelta(days=89)), (d + timedelta(days=90), d + timedelta(days=179)), (d + timedelta(days=180), d + timedelta(days=199))]
    # A remainder under 8 days joins the window before it (never a weekend-only window).
    assert windows(d, d + timedelta(days=94), 90, 8) == [(d, d + timedelta(days=94))]
    assert windows(d + timedelta(days=5), d, 90, 8) == [(d + timedelta(days=5), d + timedelta(days=5))]


def test_the_runner_runs_fx_without_credentials_unless_disabled_or_alone(sandbox, warehouse, monkeypatch, tmp_path):
    # Keyless: configured by default. Every other source of the run unconfigured ->
    # skipped (nothing to convert); disabled by configuration -> skipped.
    for name in list(sandbox.env()):
        if not name.startswith("SOURCES__FX__"):
            monkeypatch.delenv(name, raising=False)
    result = Runner(warehouse.path, ["retreaver", "fx"]).run()
    assert [(s.name, s.status) for s in result.sources] == [("retreaver", "skipped"), ("fx", "skipped")]
    assert "no other source of this run is configured" in result.sources[1].message
    assert Runner(warehouse.path, ["fx"]).run().sources[0].status == "loaded"  # asked for alone: it runs
    monkeypatch.setenv("SOURCES__FX__ENABLED", "false")
    (source,) = Runner(warehouse.path, ["fx"]).run().sources
    assert (source.status, source.message) == ("skipped", "disabled (SOURCES__FX__ENABLED=false)")
