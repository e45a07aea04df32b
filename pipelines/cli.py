"""``marketing-etl`` command line."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from typing import Any

from pipelines import DEFAULT_WAREHOUSE
from sandbox.server import Sandbox, SandboxHTTPServer, format_env, parse_now

# Exit codes a scheduler can act on.
EXIT_OK = 0
EXIT_PARTIAL = 1  # some sources failed, others loaded
EXIT_CONFIG = 2  # the command or its configuration is wrong
EXIT_NOTHING_RAN = 3  # no source loaded anything (or, for transform, no raw data to build from)
EXIT_TRANSFORM_FAILED = 4  # sources loaded, but a model or a data test failed
EXIT_STALE = 5  # status: some source or table is stale (or never loaded)


def _cmd_sandbox(args: argparse.Namespace) -> int:
    sandbox = Sandbox(seed=args.seed, scale=args.scale, now=parse_now(args.now), doc_shapes=args.doc_shapes)
    httpd = SandboxHTTPServer(sandbox, args.host, args.port, verbose=args.verbose)
    world = sandbox.world
    mode = ", doc shapes" if world.doc_shapes else ""
    print(
        f"marketing-etl sandbox serving on {httpd.base_url} "
        f"(seed={world.seed}, scale={world.scale}, now={world.now.isoformat()}{mode})"
    )
    for prefix in sandbox.routes:
        print(f"  {httpd.base_url}/{prefix}")
    print(f"  control: {httpd.base_url}/_sandbox/health")
    print("# environment for the sources:")
    print(format_env(sandbox.env(httpd.base_url)), flush=True)
    if args.check:
        # Serve, prove one request per API round-trips, and exit: what the README's
        # first command shows on a fresh machine until the full demo exists.
        from sandbox.selfcheck import run_selfcheck

        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        try:
            ok = run_selfcheck(httpd.base_url, sandbox.env(httpd.base_url))
        finally:
            httpd.shutdown()
            httpd.server_close()
            sandbox.close()
        return 0 if ok else 1

    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
        sandbox.close()
    return 0


WAREHOUSE_HELP = f"DuckDB file (default: ./{DEFAULT_WAREHOUSE})"


class Output:
    """Where a command's results go: human lines on stdout, or one JSON document
    with ``--json``; ``--quiet`` keeps stdout for failures only (on stderr)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.json = getattr(args, "json", False)
        self.quiet = getattr(args, "quiet", False)
        # On a terminal, the live view (pipelines/live.py) shows the step lines instead.
        self.live: Any = None
        self.dashboard: Any = None  # the page written by this command, if any

    def line(self, text: str) -> None:
        if not (self.json or self.quiet):
            print(text, flush=True)

    def error(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def document(self, doc: dict) -> None:
        if self.json:
            print(json.dumps(doc, indent=2, default=str), flush=True)


def _source_names(args: argparse.Namespace) -> list[str] | None:
    names = [n.strip() for n in args.sources.split(",") if n.strip()] if args.sources else None
    if names and args.command == "run" and not getattr(args, "no_transform", False):
        from pipelines.runner import SERVES_OTHERS

        # FX rates convert the money of whatever else the marts are rebuilt from:
        # `--sources retreaver` keeps them current too (SOURCES__FX__ENABLED=false
        # turns them off).
        names += [n for n in sorted(SERVES_OTHERS) if n not in names]
    return names


def _verbosity(args: argparse.Namespace) -> str:
    return "quiet" if getattr(args, "quiet", False) else "verbose" if getattr(args, "verbose", False) else "normal"


def _setup(args: argparse.Namespace, out: Output | None = None, names: list[str] | None = None) -> Any:
    """Logging for this command; returns the progress factory for the runner.

    Given ``out`` (a command that runs sources), on a terminal and without
    ``--quiet``, starts the live view (pipelines/live.py) and returns its collectors;
    elsewhere dlt's own collector or none, and logfmt lines, as before."""
    from pipelines import logs

    verbosity = _verbosity(args)
    logs.configure(verbosity)
    if out is not None and verbosity != "quiet" and logs.is_terminal():
        from pipelines.live import LiveView

        out.live = args.live = LiveView(names or [], title=f"marketing-etl {args.command}").start()
        return out.live.collector
    return logs.progress_factory(verbosity)


def _source_line(out: Output, source: Any, window: tuple[str, str] | None = None) -> None:
    where = f" {window[0]}..{window[1]}" if window else ""
    stats = source.requests or {}
    extra = f"  ({stats.get('requests', 0)} requests, {stats.get('throttled', 0)} x 429, {source.seconds:.1f}s)" if source.status != "skipped" else ""
    if out.live:
        out.live.source_result(source, window)
    else:
        out.line(f"{source.status:<8} {source.name:<13}{where} {source.message}{extra}")
    skipped = stats.get("skipped_entities", 0)
    if skipped:
        first = stats.get("skipped", [{}])[0]
        out.error(
            f"marketing-etl: {source.name}{where}: {skipped} entities skipped after error answers, "
            f"e.g. {first.get('endpoint')} {first.get('status')} {first.get('detail', '')} (all in ops.runs.skipped)".rstrip()
        )
    if source.status == "failed":
        out.error(f"marketing-etl: {source.name}{where} failed: {source.message}")


def _step_line(out: Output, status: str, name: str, message: str) -> None:
    if out.live:
        out.live.step(name, status, message)
    else:
        out.line(f"{status:<8} {name:<13} {message}")


def _transform_step(args: argparse.Namespace, out: Output, run_id: str, records: list) -> str:
    """Rebuild the marts; records the transforms' row. Returns the transform status:
    when "built" (the build and its tests passed), _finish publishes them for BI."""
    from pipelines.ops import transform_record, utc_now
    from pipelines.transform import run_transforms

    if out.live:
        out.live.step("transforms", "running", "building staging, intermediate and marts, then the data tests")
    started = utc_now()
    result = run_transforms(args.warehouse, select=getattr(args, "select", None))
    records.append(transform_record(run_id, args.command, result, started, utc_now()))
    _step_line(out, result.status, "transforms", result.message)
    for test in result.failed_tests:
        out.error(f"  data test {test.name}: {test.failures} offending rows, e.g. {test.sample[:3]}")
    if result.status in ("failed", "tests_failed", "config_error"):
        out.error(f"marketing-etl: transforms {result.status}: {result.message}")
    return result.status


def _publish(out: Output, warehouse: str) -> dict[str, str]:
    """Publish the serving file (with ops.runs and the freshness as of now), then
    write the dashboard beside it. Runs after ops.runs is written, so both show
    this run. Returns the paths written, for the JSON summary."""
    from pipelines.publish import publish
    from pipelines.warehouse import destination_name, is_local_duckdb

    if not is_local_duckdb():
        # A server warehouse (Postgres, MotherDuck, BigQuery, ...) serves readers itself.
        _step_line(out, "built", "marts", f"in the {destination_name()} warehouse (no serving file: BI tools read it directly)")
        return {}
    from pipelines.status import check_freshness

    if out.live:
        out.live.step("publish", "running", "copying the marts to the serving file")
    try:
        freshness = check_freshness(warehouse)
    except Exception as exc:  # noqa: BLE001 - the marts are still published; the dashboard says freshness is missing
        freshness = None
        out.error(f"marketing-etl: freshness not published (the dashboard will lack it): {exc}")
    serving = publish(warehouse, freshness=freshness)
    if out.live:
        out.live.step("publish", "published", str(serving))
    else:
        out.line(f"{'published':<8} {'serving file':<13} {serving}")
    written = {"serving_file": str(serving)}
    dashboard = _write_dashboard(out, warehouse)
    if dashboard:
        written["dashboard"] = str(dashboard)
    return written


def _write_dashboard(out: Output, warehouse: str) -> Any:
    """The HTML dashboard from the serving file; a failure is reported, never fatal to a run."""
    from pipelines.dashboard import build_dashboard

    if out.live:
        out.live.step("dashboard", "running", "writing the HTML dashboard")
    try:
        page = build_dashboard(warehouse)
    except Exception as exc:  # noqa: BLE001 - the data is published; the page is a convenience
        _step_line(out, "failed", "dashboard", str(exc))
        out.error(f"marketing-etl: could not write the dashboard: {type(exc).__name__}: {exc}")
        return None
    _step_line(out, "written", "dashboard", f"{page.path}  ({page.bytes / 1e6:.1f} MB, {page.seconds:.1f}s; open it in a browser)")
    out.dashboard = page.path
    return page.path


def _finish(args: argparse.Namespace, out: Output, run_id: str, records: list, code: int, publish: bool = False, **extra: Any) -> int:
    """Write the run history, publish (when the marts were built and passed their
    tests) with the dashboard, print the JSON summary, return the exit code."""
    from pipelines.ops import write_runs

    try:
        write_runs(args.warehouse, records)
    except Exception as exc:  # noqa: BLE001 - the data landed; losing the history is reported, not fatal
        out.error(f"marketing-etl: could not write ops.runs: {exc}")
    if publish:
        extra.update(_publish(out, args.warehouse))
    if out.live:
        out.live.stop()  # the view stays on screen as the run's summary table
    out.document(
        {"run_id": run_id, "command": args.command, "exit_code": code, "warehouse": str(args.warehouse), **extra,
         "runs": [r.as_json() for r in records]}
    )
    return code


def locked(command):
    """Run ``command`` holding the warehouse's lock; a busy warehouse exits at once.

    Inside the lock, a run killed earlier is recorded first (``interrupted``), and
    this one leaves its own marker until it ends (pipelines/ops.py)."""

    def wrapper(args: argparse.Namespace) -> int:
        from pipelines.lock import WarehouseBusy, warehouse_lock

        try:
            with warehouse_lock(args.warehouse):
                return _marked(command, args)
        except WarehouseBusy as exc:
            print(f"marketing-etl {args.command}: {exc}", file=sys.stderr)
            return EXIT_NOTHING_RAN

    return wrapper


def _marked(command, args: argparse.Namespace) -> int:
    from pipelines.ops import clear_marker, interrupted_records, new_run_id, start_marker, write_runs
    from pipelines.runner import SOURCE_NAMES

    args.run_id = new_run_id()
    leftover = interrupted_records(args.warehouse, args.run_id)
    if leftover:
        try:
            write_runs(args.warehouse, leftover)
            print(f"marketing-etl: run {leftover[0].run_id} ({leftover[0].command}, started {leftover[0].started_at:%Y-%m-%d %H:%M:%S}Z) "
                  "was interrupted; recorded in ops.runs as interrupted", file=sys.stderr)
        except Exception as exc:  # noqa: BLE001 - the history is reported, not fatal (as in _finish)
            print(f"marketing-etl: could not record interrupted run {leftover[0].run_id} in ops.runs: {exc}", file=sys.stderr)
    if args.command == "backfill":
        names = [args.source]
    elif args.command in ("transform", "dbt"):
        names = []
    else:
        names = (_source_names(args) if getattr(args, "sources", None) else None) or list(SOURCE_NAMES)
    if not getattr(args, "no_transform", False):
        names.append("transforms")
    start_marker(args.warehouse, args.run_id, args.command, names)
    code = command(args)
    clear_marker(args.warehouse)  # only on a normal return: an exception leaves it, to be recorded next time
    return code


def _exit_code(result: Any, transform_status: str | None) -> int:
    from pipelines.runner import SERVES_OTHERS

    refused = result.failed and all(s.message.startswith("SourceAuthError") for s in result.failed)
    if refused and not any(sum(s.rows.values()) for s in result.loaded if s.name not in SERVES_OTHERS):
        # Every failure is a refused key and no vendor row came in (Loops with no
        # email to look up "loads" nothing; FX rates serve the others): a setting
        # to fix, not an outage.
        return EXIT_CONFIG
    # A source with nothing to do (Loops before any email is known: no request, no
    # row) does not turn a run whose every other source failed into a partial one.
    active = [s for s in result.loaded if s.requests.get("requests", 0) or sum(s.rows.values())]
    if not result.loaded or (result.failed and not active):
        return EXIT_NOTHING_RAN
    if transform_status == "config_error":
        return EXIT_CONFIG  # e.g. a reporting currency nothing has a rate for
    if result.failed:
        return EXIT_PARTIAL
    return EXIT_TRANSFORM_FAILED if transform_status in ("failed", "tests_failed") else EXIT_OK


@locked
def _cmd_run(args: argparse.Namespace) -> int:
    from pipelines.ops import source_record
    from pipelines.runner import SOURCE_NAMES, Runner

    out = Output(args)
    names = _source_names(args)
    progress = _setup(args, out, names or list(SOURCE_NAMES))
    try:
        runner = Runner(args.warehouse, names, progress=progress)
    except ValueError as exc:
        out.error(f"marketing-etl run: {exc}")
        return EXIT_CONFIG
    run_id = args.run_id  # chosen by @locked, which marks the run
    result = runner.run()
    records = [source_record(run_id, "run", s) for s in result.sources]
    for source in result.sources:
        _source_line(out, source)
    transform_status = None
    if not result.loaded:
        out.error("marketing-etl run: nothing ran: " + (
            "every source failed" if result.failed else "no source is configured (see .dlt/example.secrets.toml)"
        ))
    elif not args.no_transform:
        transform_status = _transform_step(args, out, run_id, records)
    if result.failed:
        out.error("failed: " + ", ".join(s.name for s in result.failed))
    return _finish(args, out, run_id, records, _exit_code(result, transform_status), publish=transform_status == "built")


@locked
def _cmd_backfill(args: argparse.Namespace) -> int:
    from datetime import date

    from pipelines.backfill import BackfillError, parse_window, run_backfill
    from pipelines.ops import source_record

    out = Output(args)
    progress = _setup(args, out, [args.source])
    try:
        start, end = parse_window(args.source, args.start, args.end, date.today())
    except BackfillError as exc:
        out.error(f"marketing-etl backfill: {exc}")
        return EXIT_CONFIG
    run_id, records = args.run_id, []  # chosen by @locked, which marks the run

    def on_chunk(window: tuple[str, str], chunk: Any) -> None:
        records.append(source_record(run_id, "backfill", chunk, window))
        _source_line(out, chunk, window)

    result = run_backfill(args.warehouse, args.source, start, end, args.chunk_days, progress, on_chunk)
    failed = result.failed
    loaded = [c for _, c in result.chunks if c.status == "loaded"]
    transform_status = None
    if failed:
        out.error(f"marketing-etl backfill: stopped at {failed[0][0]}..{failed[0][1]}; earlier chunks are loaded, re-run to finish")
    if loaded and not args.no_transform:
        transform_status = _transform_step(args, out, run_id, records)
    if not loaded:
        code = EXIT_CONFIG if result.chunks and result.chunks[0][1].status == "skipped" else EXIT_NOTHING_RAN
        if code == EXIT_CONFIG:
            out.error(f"marketing-etl backfill: {args.source} {result.chunks[0][1].message}")
    elif failed:
        code = EXIT_PARTIAL
    elif transform_status == "config_error":
        code = EXIT_CONFIG
    else:
        code = EXIT_TRANSFORM_FAILED if transform_status in ("failed", "tests_failed") else EXIT_OK
    return _finish(args, out, run_id, records, code, publish=transform_status == "built", window={"start": start.isoformat(), "end": end.isoformat()})


@locked
def _cmd_transform(args: argparse.Namespace) -> int:
    out = Output(args)
    _setup(args)
    run_id, records = args.run_id, []  # chosen by @locked, which marks the run
    status = _transform_step(args, out, run_id, records)
    code = {"built": EXIT_OK, "skipped": EXIT_NOTHING_RAN, "config_error": EXIT_CONFIG}.get(status, EXIT_TRANSFORM_FAILED)
    return _finish(args, out, run_id, records, code, publish=status == "built")


@locked
def _cmd_dbt(args: argparse.Namespace) -> int:
    """dbt with the profile generated from the warehouse configuration, holding the
    warehouse's lock (dbt may write to it, and DuckDB has one writer)."""
    import dlt

    from pipelines.dbt import TransformError, run_dbt
    from pipelines.transform import transform_settings
    from pipelines.warehouse import PIPELINE_PREFIX, make_destination

    if not args.dbt_args:
        print("marketing-etl dbt: name a dbt command, e.g. `marketing-etl dbt docs generate`", file=sys.stderr)
        return EXIT_CONFIG
    pipeline = dlt.pipeline(PIPELINE_PREFIX + "transforms", destination=make_destination(args.warehouse), dataset_name="marts")
    try:
        return run_dbt(pipeline, args.dbt_args, settings=transform_settings())
    except TransformError as exc:
        print(f"marketing-etl dbt: {exc}", file=sys.stderr)
        return EXIT_CONFIG


@locked
def _cmd_demo(args: argparse.Namespace) -> int:
    from pipelines.demo import demo_ok, run_demo, summary
    from pipelines.ops import source_record, transform_record
    from pipelines.runner import SOURCE_NAMES

    out = Output(args)
    progress = _setup(args, out, list(SOURCE_NAMES))

    def on_step(name: str, status: str, message: str) -> None:
        if out.live:
            out.live.step(name, status, message)

    run_id = args.run_id  # chosen by @locked, which marks the run
    result, transformed, (t_started, t_finished) = run_demo(
        args.warehouse, seed=args.seed, scale=args.scale, progress=progress, doc_shapes=args.doc_shapes, on_step=on_step
    )
    records = [source_record(run_id, "demo", s) for s in result.sources]
    records.append(transform_record(run_id, "demo", transformed, t_started, t_finished))
    for source in result.sources:
        if out.live:
            out.live.source_result(source)
    code = _finish(args, out, run_id, records, EXIT_OK if demo_ok(result, transformed) else EXIT_PARTIAL,
                   publish=transformed.status == "built")
    out.line(summary(args.warehouse, result, transformed, out.dashboard))
    return code


def _cmd_status(args: argparse.Namespace) -> int:
    """Reads under a shared lock: refused at once while a run writes, and a run
    starting meanwhile waits for it (DuckDB lets no writer in while a reader has the file)."""
    from contextlib import nullcontext
    from pathlib import Path

    from pipelines.lock import WarehouseBusy, warehouse_read_lock
    from pipelines.status import FreshnessConfigError, check_freshness
    from pipelines.warehouse import is_local_duckdb

    out = Output(args)
    _setup(args)

    if is_local_duckdb() and not Path(args.warehouse).exists():
        out.error(f"marketing-etl status: no warehouse at {args.warehouse}: nothing has been loaded")
        out.document({"warehouse": str(args.warehouse), "stale": True, "sources": []})
        return EXIT_STALE
    names = _source_names(args)
    try:
        # A shared lock: a run starting now waits the second this takes (pipelines/lock.py).
        with warehouse_read_lock(args.warehouse) if is_local_duckdb() else nullcontext():
            fresh = check_freshness(args.warehouse, names, args.stale_after)
    except WarehouseBusy as exc:
        out.error(f"marketing-etl status: {exc}")
        return EXIT_NOTHING_RAN
    except FreshnessConfigError as exc:
        out.error(f"marketing-etl status: {exc}")
        return EXIT_CONFIG
    except Exception as exc:  # noqa: BLE001 - DuckDB's own lock, held by a process outside our locks (a BI tool on the warehouse)
        text = str(exc)
        if "lock" in text.lower():
            out.error(f"marketing-etl status: {args.warehouse} is being written by a run; try again when it ends")
            return EXIT_NOTHING_RAN
        raise
    out.document({"warehouse": str(args.warehouse), **fresh.as_json()})
    for source in fresh.sources:
        flag = "STALE" if source.stale else "fresh"
        out.line(f"{flag:<6} {source.source:<13} last run {source.last_run_at or '-'} ({source.last_run_status or 'none'}), last success {source.last_success_at or '-'}")
        for table in source.tables:
            mark = "STALE" if table.stale else ("ok" if table.cursor_column else "")
            cursor = f"newest {table.cursor_column} {table.newest_cursor} ({table.age_hours} h old, limit {table.stale_after_hours:g} h)" if table.cursor_column else "no cursor"
            out.line(f"  {mark:<5} {table.table:<24} {table.rows:>9,} rows  loaded {table.last_loaded_at or '-'}  {cursor}")
        for reason in source.reasons:
            out.error(f"marketing-etl status: {source.source} stale: {reason}")
    if fresh.absent:
        out.line(f"{'absent':<6} {', '.join(fresh.absent)}: never loaded here, so not in the marts (not configured?)")
    return EXIT_STALE if fresh.stale else EXIT_OK


def _cmd_dashboard(args: argparse.Namespace) -> int:
    """Reads only the serving file (never the warehouse): never waits for a run."""
    from pipelines.dashboard import DEFAULT_DAYS, build_dashboard
    from pipelines.publish import serving_path

    out = Output(args)
    _setup(args)
    if args.days < 1:
        out.error("marketing-etl dashboard: --days must be at least 1")
        return EXIT_CONFIG
    try:
        page = build_dashboard(args.warehouse, args.out, args.days or DEFAULT_DAYS)
    except OSError as exc:
        out.error(f"marketing-etl dashboard: cannot write {args.out or 'the dashboard'}: {exc}")
        return EXIT_CONFIG
    published = serving_path(args.warehouse).exists()
    out.line(f"{page.path}  ({page.bytes / 1e6:.1f} MB, {page.seconds:.2f}s)")
    for notice in page.notices:
        out.error(f"marketing-etl dashboard: {notice}")
    # 3 like `transform` with nothing to build from: the page only says what is missing.
    code = EXIT_OK if published else EXIT_NOTHING_RAN
    out.document({"command": "dashboard", "exit_code": code, "dashboard": str(page.path), "bytes": page.bytes,
                  "seconds": round(page.seconds, 3), "notices": page.notices})
    return code


def _cmd_check(args: argparse.Namespace) -> int:
    """One cheap request per configured source; loads nothing, writes nothing."""
    from pipelines.check import NOT_CONFIGURED, OK, check_sources
    from pipelines.runner import SOURCE_NAMES

    out = Output(args)
    _setup(args)
    names = _source_names(args) or list(SOURCE_NAMES)
    unknown = sorted(set(names) - set(SOURCE_NAMES))
    if unknown:
        out.error(f"marketing-etl check: unknown sources: {', '.join(unknown)} (known: {', '.join(SOURCE_NAMES)})")
        return EXIT_CONFIG
    results = check_sources(names, timeout=args.timeout)
    for r in results:
        out.line(f"{r.status:<15} {r.source:<13} {r.endpoint + '  ' if r.endpoint else ''}{r.detail}".rstrip())
        if r.status not in (OK, NOT_CONFIGURED):
            out.error(f"marketing-etl check: {r.source}: {r.status}: {r.detail}")
    configured = [r for r in results if r.status != NOT_CONFIGURED]
    # 0: every configured source answered; 2: a setting to fix (or a vendor down);
    # 3: nothing is configured, as for `run`.
    code = EXIT_NOTHING_RAN if not configured else EXIT_OK if all(r.status == OK for r in configured) else EXIT_CONFIG
    if not configured:
        out.error("marketing-etl check: no source is configured (see .dlt/example.secrets.toml)")
    out.document({"command": "check", "exit_code": code, "sources": [r.as_json() for r in results]})
    return code


def _preflight(args: argparse.Namespace) -> int | None:
    """Configuration errors of a run, found before it locks, requests or writes
    anything: one line each on stderr and exit 2; None when the run may start."""
    from pipelines.check import preflight
    from pipelines.runner import SOURCE_NAMES

    _setup(args)  # the plain-http warnings are log lines
    names = [n for n in (_source_names(args) or SOURCE_NAMES) if n in SOURCE_NAMES]
    problems = preflight(names, args.warehouse)
    for problem in problems:
        print(f"marketing-etl {args.command}: configuration error: {problem}", file=sys.stderr, flush=True)
    return EXIT_CONFIG if problems else None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="marketing-etl", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    sb = sub.add_parser("sandbox", help="serve local emulators of the five vendor APIs")
    sb.add_argument("--host", default="127.0.0.1")
    sb.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    sb.add_argument("--seed", type=int, default=42)
    sb.add_argument("--scale", type=float, default=1.0, help="grow the world (100 gives ~1M calls)")
    sb.add_argument("--now", default=None, help="the sandbox clock (ISO 8601, UTC); default: the current hour")
    sb.add_argument(
        "--doc-shapes",
        action="store_true",
        help="answer exactly in the shapes of the vendor docs' examples (see docs/sandbox.md)",
    )
    sb.add_argument("--check", action="store_true", help="serve, call every API once, print what came back, exit")
    sb.add_argument("--verbose", action="store_true", help="log every HTTP request")
    sb.set_defaults(func=_cmd_sandbox)

    common = argparse.ArgumentParser(add_help=False)
    noise = common.add_mutually_exclusive_group()
    noise.add_argument("--quiet", "-q", action="store_true", help="print only warnings and failures")
    noise.add_argument("--verbose", "-v", action="store_true", help="debug lines and dlt's INFO logs (secrets stay masked)")
    common.add_argument("--json", action="store_true", help="print one JSON summary on stdout instead of the human lines")

    run = sub.add_parser("run", parents=[common], help="extract every configured source into the warehouse")
    run.add_argument("--sources", default=None, help="comma-separated subset, e.g. retreaver,loops")
    run.add_argument("--warehouse", default=DEFAULT_WAREHOUSE, help=WAREHOUSE_HELP)
    run.add_argument("--no-transform", action="store_true", help="load only; do not rebuild the marts")
    run.set_defaults(func=_cmd_run)

    bf = sub.add_parser("backfill", parents=[common], help="reload a window of days for one source, without moving its cursors")
    bf.add_argument("--warehouse", default=DEFAULT_WAREHOUSE, help=WAREHOUSE_HELP)
    bf.add_argument("--source", required=True, help="retreaver, marin_social or inboxfirst")
    bf.add_argument("--start", required=True, help="first day, YYYY-MM-DD")
    bf.add_argument("--end", required=True, help="day after the last one, YYYY-MM-DD (exclusive)")
    bf.add_argument("--chunk-days", type=int, default=7, help="days per load (default 7)")
    bf.add_argument("--no-transform", action="store_true", help="load only; do not rebuild the marts")
    bf.set_defaults(func=_cmd_backfill)

    st = sub.add_parser("status", parents=[common], help="freshness per source and table; exits 5 when stale")
    st.add_argument("--warehouse", default=DEFAULT_WAREHOUSE, help=WAREHOUSE_HELP)
    st.add_argument("--sources", default=None, help="comma-separated sources to judge (default: every source loaded here)")
    st.add_argument("--stale-after", type=float, default=None, help="hours (default: [ops.freshness] stale_after_hours, else 48)")
    st.set_defaults(func=_cmd_status)

    demo = sub.add_parser("demo", parents=[common], help="start the sandbox, run every source and the transforms into a local DuckDB file")
    demo.add_argument("--warehouse", default="demo.duckdb", help="DuckDB file (default: ./demo.duckdb)")
    demo.add_argument("--seed", type=int, default=42)
    demo.add_argument("--scale", type=float, default=1.0)
    demo.add_argument("--doc-shapes", action="store_true", help="the sandbox answers in the vendor docs' exact shapes")
    demo.set_defaults(func=_cmd_demo)

    ck = sub.add_parser("check", parents=[common], help="one cheap request per configured source: ok, auth refused, unreachable or misconfigured; loads nothing")
    ck.add_argument("--sources", default=None, help="comma-separated subset (default: every source)")
    ck.add_argument("--timeout", type=float, default=10.0, help="seconds per request (default 10)")
    ck.set_defaults(func=_cmd_check)

    tf = sub.add_parser("transform", parents=[common], help="rebuild staging views and marts, then run the data tests")
    tf.add_argument("--warehouse", default=DEFAULT_WAREHOUSE, help=WAREHOUSE_HELP)
    tf.add_argument("--select", "-s", default=None, help="a dbt selector: build and test only these, e.g. 'spend_daily+' or 'tag:x'")
    tf.set_defaults(func=_cmd_transform)

    db = sub.add_parser(
        "dbt",
        help="run any dbt command on the transforms project, on the configured warehouse (e.g. `marketing-etl dbt docs generate`)",
    )
    db.add_argument("--warehouse", default=DEFAULT_WAREHOUSE, help=WAREHOUSE_HELP)
    db.add_argument("dbt_args", nargs=argparse.REMAINDER, help="the dbt command and its options")
    db.set_defaults(func=_cmd_dbt)
    dash = sub.add_parser("dashboard", parents=[common], help="write one self-contained HTML dashboard from the serving file (never the warehouse)")
    dash.add_argument("--warehouse", default=DEFAULT_WAREHOUSE, help=WAREHOUSE_HELP + "; its serving file is read")
    dash.add_argument("--out", default=None, help="HTML file (default: <warehouse stem>.dashboard.html beside the serving file)")
    dash.add_argument("--days", type=int, default=30, help="days in the period, ending on the newest day in the marts (default 30)")
    dash.set_defaults(func=_cmd_dashboard)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.live = None
    try:
        if args.command != "sandbox":
            from pipelines.check import settings_problem

            # A malformed .dlt/*.toml: dlt raises from deep inside on first use.
            problem = settings_problem()
            if problem:
                print(f"marketing-etl {args.command}: configuration error: {problem}", file=sys.stderr, flush=True)
                return EXIT_CONFIG
        if args.command == "run":
            code = _preflight(args)
            if code is not None:
                return code
        return args.func(args)
    except BrokenPipeError:
        # Output piped into `head` and the like: stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    finally:
        if args.live:
            args.live.stop()  # an exception mid-run must not leave the terminal in the live view


if __name__ == "__main__":
    sys.exit(main())
