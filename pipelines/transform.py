"""Build the marts on the warehouse the sources load into (the dbt project in
transforms/, run by pipelines/dbt.py)."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dlt
import yaml

from pipelines import DEFAULT_WAREHOUSE
from pipelines.dbt import MissingRawTables, TestResult, TransformError, build, present_columns
from pipelines.memory import release_memory
from pipelines.warehouse import PIPELINE_PREFIX, make_destination
from transforms import TRANSFORMS_DIR

# The [transforms] settings (.dlt/config.toml or TRANSFORMS__<NAME>) and their
# defaults: the dbt project's var `transforms` (transforms/dbt_project.yml, which
# says what each does), so plain dbt and marketing-etl use the same ones.
DEFAULT_SETTINGS: dict[str, Any] = {
    key: "" if value is None else str(value)
    for key, value in yaml.safe_load((TRANSFORMS_DIR / "dbt_project.yml").read_text())["vars"]["transforms"].items()
}


def transform_settings() -> dict[str, Any]:
    return {key: dlt.config.get(f"transforms.{key}") or default for key, default in DEFAULT_SETTINGS.items()}


def read_seed(path: Path) -> list[dict[str, Any]]:
    with path.open(newline="") as handle:
        return [{k: (v if v != "" else None) for k, v in row.items()} for row in csv.DictReader(handle)]


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


def run_transforms(warehouse: str | Path = DEFAULT_WAREHOUSE, root: Path = TRANSFORMS_DIR, select: str | None = None) -> TransformResult:
    """Build the marts (those of ``select``, a dbt selector, when given) and run their tests."""
    pipeline = dlt.pipeline(PIPELINE_PREFIX + "transforms", destination=make_destination(warehouse), dataset_name="marts")
    settings = transform_settings()
    problem = reporting_currency_error(pipeline, root, settings)
    if problem:
        return TransformResult("config_error", problem)
    # After a run's loads in the same process: what the extracts freed goes back to
    # the OS before dbt and its DuckDB take their share.
    release_memory()
    try:
        built = build(pipeline, root, settings=settings, select=select)
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
