"""``marketing-etl demo``: the whole product against the sandbox, in one command.

Starts the sandbox on a free port, points every source at it (in this process's
environment only), runs the sources and the transforms into a local DuckDB file,
prints what landed and how to query it, and stops the sandbox.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from pipelines.ops import utc_now
from pipelines.publish import serving_path
from pipelines.runner import SOURCE_NAMES, Runner, RunResult
from pipelines.transform import TransformResult, run_transforms
from sandbox.server import SandboxThread

DEFAULT_DEMO_WAREHOUSE = "demo.duckdb"


def run_demo(
    warehouse: str | Path = DEFAULT_DEMO_WAREHOUSE,
    seed: int = 42,
    scale: float = 1.0,
    progress: Callable[[str], Any] | None = None,
    doc_shapes: bool = False,
    on_step: Callable[[str, str, str], None] | None = None,
) -> tuple[RunResult, TransformResult, tuple[datetime, datetime]]:
    """Returns the sources' results, the transforms' result and when the transforms ran.

    Publishing is the caller's (``marketing-etl demo`` publishes once the run history
    is written, so the serving file and its dashboard show this run).
    ``on_step(name, status, message)`` hears of the transforms starting and ending."""
    warehouse = Path(warehouse).resolve()
    # The demo keeps its dlt state beside its own warehouse, apart from real runs.
    os.environ.setdefault("DLT_DATA_DIR", str(warehouse.with_suffix(".dlt")))
    # The demo is a local DuckDB file whatever warehouse.destination says (this process only).
    os.environ["WAREHOUSE__DESTINATION"] = "duckdb"
    with SandboxThread(seed=seed, scale=scale, doc_shapes=doc_shapes) as sandbox:
        mode = ", doc shapes" if doc_shapes else ""
        print(f"sandbox serving on {sandbox.base_url} (seed {seed}, scale {scale}{mode}); loading into {warehouse}", flush=True)
        os.environ.update(sandbox.env())
        result = Runner(warehouse, list(SOURCE_NAMES), progress=progress).run()
        started = utc_now()
        if on_step:
            on_step("transforms", "running", "building staging, intermediate and marts, then the data tests")
        transformed = run_transforms(warehouse)
        if on_step:
            on_step("transforms", transformed.status, transformed.message)
    return result, transformed, (started, utc_now())


def summary(warehouse: str | Path, result: RunResult, transformed: TransformResult, dashboard: Path | None = None) -> str:
    warehouse = Path(warehouse).resolve()
    lines = ["", "sources:"]
    for source in result.sources:
        lines.append(f"  {source.status:<8} {source.name:<13} {source.message}  ({source.requests.get('requests', 0)} requests, {source.seconds:.1f}s)")
    lines.append(f"transforms: {transformed.status}: {transformed.message}")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = con.execute(
            "select schema_name, table_name from duckdb_tables() "
            "where not starts_with(table_name, '_dlt') and schema_name <> 'seeds' "
            "and not ends_with(schema_name, '_staging') order by 1, 2"
        ).fetchall()
        lines += ["", "rows per table:"]
        for schema, name in tables:
            rows = con.execute(f'select count(*) from "{schema}"."{name}"').fetchone()[0]
            lines.append(f"  {schema + '.' + name:<45} {rows:>9,}")
        if transformed.status == "built":
            per_platform = con.execute(
                """
                select platform, sum(spend), sum(platform_conversions), sum(calls), sum(conversions_value),
                       bool_or(spend is null), bool_or(conversions_value is null)
                from marts.marketing_daily group by platform order by platform
                """
            ).fetchall()
            currency = con.execute("select max(value) from seeds.settings where key = 'reporting_currency'").fetchone()[0]
            lines += ["", f"spend and conversions per platform ({currency}; each converted call counted once, on the row it is attributed to):"]
            lines.append(f"  {'platform':<13} {'spend':>14} {'conversions':>12} {'calls':>10} {'value':>14}")
            for platform, spend, conversions, calls, value, spend_unknown, value_unknown in per_platform:
                lines.append(
                    f"  {platform:<13} {_money(spend, spend_unknown):>14} {conversions:>12,} {calls:>10,} {_money(value, value_unknown):>14}"
                )
    lines += [
        "",
        f"warehouse: {warehouse}",
        f"serving file for BI tools (read-only copy of the marts): {serving_path(warehouse)}",
        "query it:",
        f"  .venv/bin/python -c \"import duckdb; print(duckdb.connect('{warehouse}', read_only=True).sql('select * from marts.marketing_daily order by date_day desc limit 10'))\"",
        f"  duckdb -readonly {warehouse} \"select platform, sum(spend) from marts.spend_daily group by 1\"   # with the duckdb CLI",
        f"run history: select * from ops.runs;   freshness: .venv/bin/marketing-etl status --warehouse {warehouse}",
    ]
    # Last, where a person looks when the demo ends.
    if dashboard:
        lines += ["", f"dashboard (open it in a browser; works offline): {dashboard}", f"  file://{dashboard}"]
    else:
        lines += ["", "no dashboard: the marts were not built or published (see above)"]
    return "\n".join(lines)


def _money(total: Any, some_unknown: bool) -> str:
    """Unknown stays unknown: a platform with no cost configured (email) has no spend."""
    if total is None:
        return "unknown"
    return f"{total:,.2f}" + ("+?" if some_unknown else "")


def demo_ok(result: RunResult, transformed: TransformResult) -> bool:
    return not result.failed and transformed.status == "built"

