"""Build the marts on the warehouse the sources load into."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dlt

from pipelines.runner import DEFAULT_WAREHOUSE, PIPELINE_PREFIX, make_destination
from transforms.runner import TRANSFORMS_DIR, MissingRawTables, TestResult, TransformError, build

# Defaults of the [transforms] settings (.dlt/config.toml or TRANSFORMS__<NAME>).
DEFAULT_SETTINGS: dict[str, Any] = {
    "reporting_currency": "USD",
    # Cost per thousand emails sent, in the reporting currency (InboxFirst has none).
    "email_cost_per_thousand": "0",
}


def transform_settings() -> dict[str, Any]:
    return {key: dlt.config.get(f"transforms.{key}") or default for key, default in DEFAULT_SETTINGS.items()}


@dataclass
class TransformResult:
    status: str  # "built" | "tests_failed" | "skipped" | "failed"
    message: str = ""
    tests: list[TestResult] = field(default_factory=list)
    # Sources with no raw table in the warehouse: absent from the marts.
    absent_sources: list[str] = field(default_factory=list)

    @property
    def failed_tests(self) -> list[TestResult]:
        return [t for t in self.tests if not t.ok]


def run_transforms(warehouse: str | Path = DEFAULT_WAREHOUSE, root: Path = TRANSFORMS_DIR) -> TransformResult:
    pipeline = dlt.pipeline(PIPELINE_PREFIX + "transforms", destination=make_destination(warehouse), dataset_name="marts")
    try:
        built = build(pipeline, root, settings=transform_settings())
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
