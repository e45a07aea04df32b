"""Build the marts on the warehouse the sources load into."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dlt

from pipelines import DEFAULT_WAREHOUSE
from pipelines.warehouse import PIPELINE_PREFIX, make_destination
from transforms.runner import TRANSFORMS_DIR, MissingRawTables, TestResult, TransformError, build, present_columns, read_seed

# Defaults of the [transforms] settings (.dlt/config.toml or TRANSFORMS__<NAME>).
DEFAULT_SETTINGS: dict[str, Any] = {
    "reporting_currency": "USD",
    # IANA zone whose calendar days the marts use for UTC-timestamped figures
    # (calls, ListenLoop, InboxFirst); empty: UTC. Marin Social days stay the
    # account's own (its API reports whole days in the account's zone).
    "reporting_timezone": "",
    # Days before the newest day of a source in which its figures may still be
    # restated: reconciliation differences there are "pending", not failures.
    "marin_social_restatement_days": "3",
    "retreaver_restatement_days": "4",
    # How far a pending day may be off: the larger of an absolute amount (calls or
    # currency units) and a percentage of the reference side. Beyond it, it fails.
    "reconciliation_tolerance_abs": "5",
    "reconciliation_tolerance_pct": "10",
    # A rate older than this many days on the day it converts fails the data test
    # fx_rate_not_stale (weekends and holidays leave up to 4 days between ECB fixings).
    "fx_max_rate_age_days": "7",
}


def transform_settings() -> dict[str, Any]:
    return {key: dlt.config.get(f"transforms.{key}") or default for key, default in DEFAULT_SETTINGS.items()}


@dataclass
class TransformResult:
    status: str  # "built" | "tests_failed" | "skipped" | "failed" | "config_error"
    message: str = ""
    tests: list[TestResult] = field(default_factory=list)
    # Sources with no raw table in the warehouse: absent from the marts.
    absent_sources: list[str] = field(default_factory=list)

    @property
    def failed_tests(self) -> list[TestResult]:
        return [t for t in self.tests if not t.ok]


# The FX source's raw table (sources/fx): the currencies it knows, its base included.
FX_RAW_TABLE = "fx.rates"


def known_currencies(pipeline: dlt.Pipeline, root: Path = TRANSFORMS_DIR) -> set[str]:
    """Currencies with at least one rate: in seeds/fx_rates.csv or loaded by the FX
    source (which stores its base, EUR, at 1 on every day it loaded)."""
    seed = root / "seeds" / "fx_rates.csv"
    rows = read_seed(seed) if seed.exists() else []
    known = {str(r["currency_code"]).strip().upper() for r in rows if r.get("currency_code") and r.get("usd_per_unit")}
    with pipeline.sql_client() as client:
        if present_columns(client, FX_RAW_TABLE) is not None:
            loaded = client.execute_sql(f"select distinct upper(currency_code) from {FX_RAW_TABLE} where rate > 0") or []
            known |= {str(r[0]) for r in loaded if r[0]}
    return known


def reporting_currency_error(pipeline: dlt.Pipeline, root: Path, settings: dict[str, Any]) -> str | None:
    """A reporting currency nothing has a rate for is a configuration error (exit 2),
    found before anything is rebuilt: every converted amount would be null."""
    currency = str(settings.get("reporting_currency") or "").strip().upper()
    known = known_currencies(pipeline, root)
    if currency in known:
        return None
    return (
        f"reporting currency {currency or '(empty)'!r} (TRANSFORMS__REPORTING_CURRENCY) has no rate in the FX source "
        f"({FX_RAW_TABLE}) nor in transforms/seeds/fx_rates.csv; known: {', '.join(sorted(known)) or 'none'}"
    )


def run_transforms(warehouse: str | Path = DEFAULT_WAREHOUSE, root: Path = TRANSFORMS_DIR) -> TransformResult:
    pipeline = dlt.pipeline(PIPELINE_PREFIX + "transforms", destination=make_destination(warehouse), dataset_name="marts")
    settings = transform_settings()
    problem = reporting_currency_error(pipeline, root, settings)
    if problem:
        return TransformResult("config_error", problem)
    try:
        built = build(pipeline, root, settings=settings)
    except MissingRawTables as exc:
        return TransformResult("skipped", str(exc))
    except TransformError as exc:
        return TransformResult("failed", str(exc))
    tests = built.tests
    absent = built.coverage.absent_sources
    # Sources with some of their raw tables (a table not loaded yet) are not "absent".
    partial = sorted({t for t in built.coverage.absent if t.split(".")[0] not in absent})
    notes = [f"without {', '.join(absent)} (not loaded here)"] if absent else []
    notes += [f"empty stand-ins for {', '.join(partial)}"] if partial else []
    result = TransformResult("built", f"{len(tests)} data tests passed" + "".join(f"; {n}" for n in notes), tests, absent)
    if result.failed_tests:
        result.status = "tests_failed"
        result.message = "data tests failed: " + ", ".join(f"{t.name} ({t.failures} rows)" for t in result.failed_tests)
    return result
