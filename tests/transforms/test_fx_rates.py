"""FX rates in the transforms: the FX source's daily rates (units per EUR) and the
seed's overrides (USD per unit) become one rate per (day, currency); an old rate
fails the data test fx_rate_not_stale naming currency and day; a reporting currency
nothing has a rate for is a configuration error (exit 2), found before any build.

The FX models run on their own here, in a dbt project of their own (a stand-in
int_spend_local_daily says which (day, currency) pairs need a rate), so these tests
do not depend on the marts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import dlt
import duckdb
import pytest

from pipelines.dbt import build
from pipelines.transform import reporting_currency_error, run_transforms
from transforms import TRANSFORMS_DIR

# ECB-style rows as sources/fx lands them: units per 1 EUR, the base itself at 1.
# Mon 2025-03-03 and Fri 2025-03-07 only (a gap, and a weekend after it).
FEED = [
    ("2025-03-03", "EUR", "EUR", "1"),
    ("2025-03-03", "USD", "EUR", "1.10"),
    ("2025-03-03", "GBP", "EUR", "0.88"),
    ("2025-03-03", "CHF", "EUR", "0.95"),
    ("2025-03-07", "EUR", "EUR", "1"),
    ("2025-03-07", "USD", "EUR", "1.20"),
    ("2025-03-07", "GBP", "EUR", "0.90"),
    ("2025-03-07", "CHF", "EUR", "0.96"),
]
# Which (day, currency) the platforms report spend in: 03-02 is before any rate,
# 03-08 is a Saturday (Friday's rate), 03-20 is 13 days after the last rate.
SPEND_DAYS = """date_day,currency_code
2025-03-02,EUR
2025-03-03,EUR
2025-03-03,GBP
2025-03-03,USD
2025-03-04,EUR
2025-03-08,EUR
2025-03-20,EUR
"""
# No seed rates to speak of: one USD row, which changes no conversion.
NO_SEED = "rate_date,currency_code,usd_per_unit\n2025-01-01,USD,1\n"


def fx_root(tmp_path: Path, seed: str = NO_SEED) -> Path:
    """A dbt project of the FX models, their data test and seeds, with a stand-in
    spend model and another source's raw table (load_other_raw), so a warehouse
    without fx.rates still builds."""
    root = tmp_path / "transforms"
    shutil.copytree(TRANSFORMS_DIR / "macros", root / "macros")
    shutil.copy(TRANSFORMS_DIR / "dbt_project.yml", root / "dbt_project.yml")
    for rel in ("models/staging/stg_fx__rates.sql", "models/intermediate/int_fx_rates_daily.sql",
                "models/intermediate/int_settings.sql", "tests/fx_rate_not_stale.sql"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(TRANSFORMS_DIR / rel, root / rel)
    (root / "models" / "intermediate" / "int_spend_local_daily.sql").write_text("select date_day, currency_code from {{ ref('spend_days') }}")
    (root / "models" / "staging" / "stg_other__things.sql").write_text("select * from {{ source('other', 'things') }}")
    (root / "models" / "staging" / "_sources.yml").write_text(
        "version: 2\nsources:\n  - name: fx\n    tables: [{name: rates}]\n  - name: other\n    tables: [{name: things}]\n"
    )
    (root / "seeds").mkdir()
    (root / "seeds" / "spend_days.csv").write_text(SPEND_DAYS)
    (root / "seeds" / "fx_rates.csv").write_text(seed)
    return root


def load_feed(db: Path, rows=FEED) -> None:
    load_other_raw(db)
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS fx")
        con.execute("CREATE TABLE fx.rates (rate_date date, currency_code varchar, base_currency varchar, rate decimal(18,8))")
        con.executemany("INSERT INTO fx.rates VALUES (?, ?, ?, ?)", rows)


def load_other_raw(db: Path) -> None:
    """Some raw table that is not FX, so a build without the feed still has data."""
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS other")
        con.execute("CREATE TABLE other.things (id integer)")


@pytest.fixture
def warehouse(tmp_path, monkeypatch):
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt"))
    for name in list(os.environ):
        if name.startswith("TRANSFORMS__"):
            monkeypatch.delenv(name)
    return tmp_path / "w.duckdb"


def built(db: Path, root: Path, **settings: str):
    pipeline = dlt.pipeline("fx_test", destination=dlt.destinations.duckdb(str(db)), dataset_name="marts", pipelines_dir=str(db.parent / "p"))
    result = build(pipeline, root, settings={"reporting_currency": "USD", **settings})
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "select date_day, currency_code, fx_rate, rate_date, rate_age_days, rate_source "
            "from intermediate.int_fx_rates_daily order by date_day, currency_code"
        ).fetchall()
    by_key = {(d.isoformat(), c): (rate, rd.isoformat() if rd else None, age, src) for d, c, rate, rd, age, src in rows}
    return {t.name: t for t in result.tests}, by_key


def test_feed_rates_convert_through_usd_with_the_latest_earlier_rate(warehouse, tmp_path):
    load_feed(warehouse)
    tests, fx = built(warehouse, fx_root(tmp_path), fx_max_rate_age_days="30")
    assert fx[("2025-03-02", "EUR")] == (None, None, None, None)  # before any rate: null, never 0
    assert fx[("2025-03-03", "EUR")] == (Decimal("1.10"), "2025-03-03", 0, "feed")
    assert fx[("2025-03-03", "GBP")] == (Decimal("1.25"), "2025-03-03", 0, "feed")  # 1.10 / 0.88 USD per GBP
    assert fx[("2025-03-03", "USD")] == (Decimal("1"), None, None, None)  # same currency: no rate needed
    assert fx[("2025-03-04", "EUR")] == (Decimal("1.10"), "2025-03-03", 1, "feed")
    assert fx[("2025-03-08", "EUR")] == (Decimal("1.20"), "2025-03-07", 1, "feed")  # Saturday: Friday's fixing
    assert tests["fx_rate_not_stale"].ok

    tests, fx = built(warehouse, fx_root(tmp_path / "gbp"), reporting_currency="gbp", fx_max_rate_age_days="30")
    assert fx[("2025-03-03", "EUR")][0] == Decimal("0.88")  # the ECB's own GBP per EUR
    assert fx[("2025-03-03", "USD")][0] == Decimal("0.8")
    assert fx[("2025-03-03", "GBP")][0] == Decimal("1")
    assert fx[("2025-03-08", "EUR")][0] == Decimal("0.9")


def test_a_seed_row_overrides_the_feed_on_its_own_day_only(warehouse, tmp_path):
    load_feed(warehouse)
    seed = NO_SEED + "2025-03-07,EUR,1.25\n"
    _, fx = built(warehouse, fx_root(tmp_path, seed), fx_max_rate_age_days="30")
    assert fx[("2025-03-08", "EUR")] == (Decimal("1.25"), "2025-03-07", 1, "feed+seed")  # EUR from the seed, USD from the feed
    assert fx[("2025-03-04", "EUR")] == (Decimal("1.10"), "2025-03-03", 1, "feed")  # other days keep the feed


def test_the_seed_alone_converts_when_the_feed_was_never_loaded(warehouse, tmp_path):
    load_other_raw(warehouse)  # no fx.rates: the staging model reads an empty typed stand-in
    seed = NO_SEED + "2025-03-01,USD,1\n2025-03-01,EUR,1.05\n2025-03-01,GBP,1.30\n"
    tests, fx = built(warehouse, fx_root(tmp_path, seed), fx_max_rate_age_days="31")
    assert fx[("2025-03-20", "EUR")] == (Decimal("1.05"), "2025-03-01", 19, "seed")
    assert fx[("2025-03-03", "GBP")][0] == Decimal("1.3")
    assert tests["fx_rate_not_stale"].ok  # monthly rows: the limit was raised to 31 days


def test_a_rate_older_than_the_limit_fails_the_data_test_naming_currency_and_day(warehouse, tmp_path):
    load_feed(warehouse)
    tests, _ = built(warehouse, fx_root(tmp_path))  # default limit: 7 days
    stale = tests["fx_rate_not_stale"]
    assert stale.failures == 1
    problem, currency, day, rate_date, age = stale.sample[0]
    assert (currency, day, rate_date, age) == ("EUR", date(2025, 3, 20), date(2025, 3, 7), 13)
    assert problem == "EUR rate of 2025-03-07 converts EUR to USD on 2025-03-20: 13 days old (limit 7, fx_max_rate_age_days)"

    tests, _ = built(warehouse, fx_root(tmp_path / "limit"), fx_max_rate_age_days="13")
    assert tests["fx_rate_not_stale"].ok


def test_a_stale_reporting_currency_rate_is_named_too(warehouse, tmp_path):
    """Reporting CHF from the seed only (old), EUR from the feed: the CHF side is old."""
    load_feed(warehouse, [r for r in FEED if r[1] != "CHF"])
    seed = NO_SEED + "2025-02-01,CHF,1.10\n"
    tests, _ = built(warehouse, fx_root(tmp_path, seed), reporting_currency="CHF")
    samples = {(row[1], row[2]): row[0] for row in tests["fx_rate_not_stale"].sample}
    assert samples[("EUR", date(2025, 3, 3))].startswith("CHF rate of 2025-02-01 converts EUR to CHF on 2025-03-03: 30 days old")


def test_an_unknown_reporting_currency_is_a_configuration_error_before_any_build(warehouse, tmp_path, monkeypatch):
    load_feed(warehouse)
    root = fx_root(tmp_path)
    monkeypatch.setenv("TRANSFORMS__REPORTING_CURRENCY", "xyz")
    result = run_transforms(warehouse, root)
    assert result.status == "config_error"
    assert "'XYZ'" in result.message and "TRANSFORMS__REPORTING_CURRENCY" in result.message
    assert "known: CHF, EUR, GBP, USD" in result.message
    with duckdb.connect(str(warehouse), read_only=True) as con:
        schemas = {r[0] for r in con.execute("select schema_name from information_schema.schemata").fetchall()}
    assert "intermediate" not in schemas  # nothing was rebuilt

    # Known from the feed alone (CHF), and the feed's base (EUR) once it has loaded.
    monkeypatch.setenv("TRANSFORMS__REPORTING_CURRENCY", "chf")
    assert run_transforms(warehouse, root).status in ("built", "tests_failed")
    pipeline = dlt.pipeline("fx_check", destination=dlt.destinations.duckdb(str(warehouse)), dataset_name="marts", pipelines_dir=str(tmp_path / "p"))
    assert reporting_currency_error(pipeline, root, {"reporting_currency": "EUR"}) is None


def test_the_feeds_base_is_not_known_before_the_feed_has_loaded(warehouse, tmp_path):
    load_other_raw(warehouse)
    root = fx_root(tmp_path)
    pipeline = dlt.pipeline("fx_check", destination=dlt.destinations.duckdb(str(warehouse)), dataset_name="marts", pipelines_dir=str(tmp_path / "p"))
    assert reporting_currency_error(pipeline, root, {"reporting_currency": "USD"}) is None
    assert "'EUR'" in reporting_currency_error(pipeline, root, {"reporting_currency": "EUR"})


def test_the_cli_exits_2_for_an_unknown_reporting_currency(warehouse, tmp_path):
    load_feed(warehouse)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "TRANSFORMS__"))}
    env.update({"DLT_DATA_DIR": str(tmp_path / "dlt"), "TRANSFORMS__REPORTING_CURRENCY": "XYZ"})
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "transform", "--warehouse", str(warehouse)],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "config_error" in done.stderr and "'XYZ'" in done.stderr
