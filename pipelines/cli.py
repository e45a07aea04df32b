"""``marketing-etl`` command line."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from sandbox.server import Sandbox, SandboxHTTPServer, format_env, parse_now

# Exit codes a scheduler can act on.
EXIT_OK = 0
EXIT_PARTIAL = 1  # some sources failed, others loaded
EXIT_CONFIG = 2  # the command or its configuration is wrong
EXIT_NOTHING_RAN = 3  # no source loaded anything (or, for transform, no raw data to build from)
EXIT_TRANSFORM_FAILED = 4  # sources loaded, but a model or a data test failed



def _cmd_sandbox(args: argparse.Namespace) -> int:
    sandbox = Sandbox(seed=args.seed, scale=args.scale, now=parse_now(args.now))
    httpd = SandboxHTTPServer(sandbox, args.host, args.port, verbose=args.verbose)
    world = sandbox.world
    print(f"marketing-etl sandbox serving on {httpd.base_url} (seed={world.seed}, scale={world.scale}, now={world.now.isoformat()})")
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


def _print_transform(result) -> None:
    print(f"{result.status:<8} {'transforms':<13} {result.message}")
    for test in result.failed_tests:
        print(f"  data test {test.name}: {test.failures} offending rows, e.g. {test.sample[:3]}", file=sys.stderr)


def _transform_and_publish(warehouse: str) -> bool:
    """Rebuild the marts; publish them for BI only when the build and its tests passed."""
    from pipelines.publish import publish
    from pipelines.transform import run_transforms

    result = run_transforms(warehouse)
    _print_transform(result)
    if result.status == "built":
        print(f"{'published':<8} {'serving file':<13} {publish(warehouse)}")
    return result.status in ("built", "skipped")


def locked(command):
    """Run ``command`` holding the warehouse's lock; a busy warehouse exits at once."""

    def wrapper(args: argparse.Namespace) -> int:
        from pipelines.lock import WarehouseBusy, warehouse_lock

        try:
            with warehouse_lock(args.warehouse):
                return command(args)
        except WarehouseBusy as exc:
            print(f"marketing-etl {args.command}: {exc}", file=sys.stderr)
            return EXIT_NOTHING_RAN

    return wrapper


@locked
def _cmd_run(args: argparse.Namespace) -> int:
    from pipelines.runner import Runner

    names = [n.strip() for n in args.sources.split(",") if n.strip()] if args.sources else None
    try:
        runner = Runner(args.warehouse, names)
    except ValueError as exc:
        print(f"marketing-etl run: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    result = runner.run()
    for source in result.sources:
        print(f"{source.status:<8} {source.name:<13} {source.message}")
    if not result.loaded:
        if result.failed:
            print("failed: " + ", ".join(s.name for s in result.failed), file=sys.stderr)
        else:
            print("nothing ran: no source is configured (see .dlt/example.secrets.toml)", file=sys.stderr)
        return EXIT_NOTHING_RAN
    transform_ok = True
    if not args.no_transform:
        transform_ok = _transform_and_publish(args.warehouse)
    if result.failed:
        print("failed: " + ", ".join(s.name for s in result.failed), file=sys.stderr)
        return EXIT_PARTIAL
    return EXIT_OK if transform_ok else EXIT_TRANSFORM_FAILED


@locked
def _cmd_transform(args: argparse.Namespace) -> int:
    from pipelines.publish import publish
    from pipelines.transform import run_transforms

    result = run_transforms(args.warehouse)
    _print_transform(result)
    if result.status == "skipped":
        return EXIT_NOTHING_RAN
    if result.status != "built":
        return EXIT_TRANSFORM_FAILED
    print(f"{'published':<8} {'serving file':<13} {publish(args.warehouse)}")
    return EXIT_OK


@locked
def _cmd_demo(args: argparse.Namespace) -> int:
    from pipelines.demo import demo_ok, run_demo, summary

    result, transformed = run_demo(args.warehouse, seed=args.seed, scale=args.scale)
    print(summary(args.warehouse, result, transformed))
    return EXIT_OK if demo_ok(result, transformed) else EXIT_PARTIAL


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="marketing-etl", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    sb = sub.add_parser("sandbox", help="serve local emulators of the five vendor APIs")
    sb.add_argument("--host", default="127.0.0.1")
    sb.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    sb.add_argument("--seed", type=int, default=42)
    sb.add_argument("--scale", type=float, default=1.0, help="grow the world (100 gives ~1M calls)")
    sb.add_argument("--now", default=None, help="the sandbox clock (ISO 8601, UTC); default: the current hour")
    sb.add_argument("--check", action="store_true", help="serve, call every API once, print what came back, exit")
    sb.add_argument("--verbose", action="store_true", help="log every HTTP request")
    sb.set_defaults(func=_cmd_sandbox)

    run = sub.add_parser("run", help="extract every configured source into the warehouse")
    run.add_argument("--sources", default=None, help="comma-separated subset, e.g. retreaver,loops")
    run.add_argument("--warehouse", default="marketing.duckdb", help="DuckDB file (default: ./marketing.duckdb)")
    run.add_argument("--no-transform", action="store_true", help="load only; do not rebuild the marts")
    run.set_defaults(func=_cmd_run)

    demo = sub.add_parser("demo", help="start the sandbox, run every source and the transforms into a local DuckDB file")
    demo.add_argument("--warehouse", default="demo.duckdb", help="DuckDB file (default: ./demo.duckdb)")
    demo.add_argument("--seed", type=int, default=42)
    demo.add_argument("--scale", type=float, default=1.0)
    demo.set_defaults(func=_cmd_demo)

    tf = sub.add_parser("transform", help="rebuild staging views and marts, then run the data tests")
    tf.add_argument("--warehouse", default="marketing.duckdb", help="DuckDB file (default: ./marketing.duckdb)")
    tf.set_defaults(func=_cmd_transform)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
