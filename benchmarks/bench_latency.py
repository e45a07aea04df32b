"""Latency-bound throughput: the sandbox answers every request 100 ms late.

    .venv/bin/python benchmarks/bench_latency.py --scale 1 --latency 0.1 [--repeat N] [--sources a,b]

The ceiling of a source is (requests it may have in flight) / latency, capped by
its documented rate limit:

- Marin Social and InboxFirst fetch the pages that do not depend on each other side
  by side: at most ``max_concurrent_requests`` (their settings.py, or
  SOURCES__<API>__MAX_CONCURRENT_REQUESTS) and never more than dlt's extract pool
  (EXTRACT__WORKERS, default 5);
- the others walk one page at a time (a Retreaver page's successor is in the page
  before it; ListenLoop's list ends on an empty page; Loops looks emails up one by
  one), so 1 in flight; Loops is also capped by its rate limit (doc: 10
  requests/s; we pace at 9).

Reported per source, from the run's own figures and the sandbox's request log:

- over the source's whole time (extract, normalize and load, and the wait for the
  one DuckDB writer): requests per second and that as a share of the ceiling;
- over its fetch window (first request received to last answer sent, that is the
  last request's arrival + latency): the same, which is what concurrency changes;
- the most requests the sandbox saw arrive within one latency of each other (each
  of them was still open when the last arrived: a lower bound of the requests in
  flight), and Loops' busiest second;
- the fetch window of the same load with no latency added (``--no-latency-run``,
  on by default): what CPU alone (pipeline and sandbox share the cores) costs, a
  floor no concurrency setting goes below.

``--sources`` loads only those sources (``run --sources``): a source alone, with
no other source's CPU beside it.

Results: benchmarks/results/latency_scale<N>.json (every repetition), or
latency_scale<N>-<sources>.json with ``--sources``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import sys
import tempfile
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

from harness import ROOT, run_cli, save, start_sandbox

sys.path.insert(0, str(ROOT))  # the sources' settings (their max_concurrent_requests)

LOOPS_LIMIT_PER_SECOND = 10.0  # doc "Rate Limiting"
RATE_LIMITS = {"loops": LOOPS_LIMIT_PER_SECOND}
# Sources that fetch independent pages side by side (their settings.MAX_CONCURRENT_REQUESTS).
CONCURRENT_SOURCES = ("marin_social", "inboxfirst")
DLT_EXTRACT_WORKERS = 5  # dlt's default extract pool (EXTRACT__WORKERS)


def in_flight_allowed(source: str, env: dict[str, str]) -> int:
    """Requests ``source`` may have in flight in this run."""
    if source not in CONCURRENT_SOURCES:
        return 1
    setting = env.get(f"SOURCES__{source.upper()}__MAX_CONCURRENT_REQUESTS")
    if setting is None:
        setting = importlib.import_module(f"sources.{source}.settings").MAX_CONCURRENT_REQUESTS
    workers = int(env.get("EXTRACT__WORKERS", DLT_EXTRACT_WORKERS))
    return min(int(setting), workers)


def peak_overlap(arrivals: list[float], latency: float) -> int:
    """Most arrivals within one latency of each other (two pointers over sorted times)."""
    times, peak, first = sorted(arrivals), 0, 0
    for last, at in enumerate(times):
        while at - times[first] >= latency:
            first += 1
        peak = max(peak, last - first + 1)
    return peak


def _full_run(sandbox: Any, latency: float, sources: str | None = None) -> tuple[Any, list[dict[str, Any]], dict[str, str]]:
    """One ``run --no-transform`` on a fresh warehouse and dlt state, ``latency`` added."""
    if latency:
        sandbox.post("faults", {"kind": "slow", "delay": latency, "rate": 1.0})
    try:
        with tempfile.TemporaryDirectory() as tmp:
            env = {**sandbox.env, "DLT_DATA_DIR": str(Path(tmp) / "dlt")}
            seq = sandbox.last_seq()
            only = ["--sources", sources] if sources else []
            full = run_cli(["run", "--no-transform", "--json", *only, "--warehouse", str(Path(tmp) / "w.duckdb")], env, sandbox)
            entries = sandbox.requests_since(seq)
    finally:
        if latency:
            sandbox.delete("faults")
    return full, entries, env


def _arrivals(entries: list[dict[str, Any]]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = defaultdict(list)
    for entry in entries:
        out[entry["api"]].append(datetime.fromisoformat(entry["at"]).timestamp())
    return out


def one_run(args: argparse.Namespace) -> dict[str, Any]:
    sandbox = start_sandbox(args.scale, args.seed)
    try:
        load_before = os.getloadavg()
        full, entries, env = _full_run(sandbox, args.latency, args.sources)
        load_after = os.getloadavg()
        # The same load with no latency added: how long each source's fetching takes
        # when only CPU (pipeline and sandbox, on the same cores) bounds it.
        _, bare_entries, _ = _full_run(sandbox, 0.0, args.sources) if args.no_latency_run else (None, [], None)
    finally:
        sandbox.stop()

    loops_per_second: Counter = Counter()
    for entry in entries:
        if entry["api"] == "loops":
            loops_per_second[datetime.fromisoformat(entry["at"]).replace(microsecond=0)] += 1
    arrivals, bare = _arrivals(entries), _arrivals(bare_entries)
    config = {**os.environ, **env}
    sources = {}
    for run in full.document["runs"]:
        if run["source"] == "transforms" or not run["requests"]:
            continue
        name = run["source"]
        allowed = in_flight_allowed(name, config)
        ceiling = min(allowed / args.latency, RATE_LIMITS.get(name, float("inf")))
        achieved = run["requests"] / run["seconds"]
        times = arrivals.get(name, [])
        window = (max(times) - min(times) + args.latency) if times else None
        in_window = run["requests"] / window if window else None
        bare_times = bare.get(name, [])
        sources[name] = {
            "requests": run["requests"],
            "in_flight_allowed": allowed,
            "ceiling_per_second": round(ceiling, 2),
            "seconds": round(run["seconds"], 2),
            "requests_per_second": round(achieved, 2),
            "share_of_ceiling": round(achieved / ceiling, 3),
            "fetch_window_seconds": round(window, 2) if window else None,
            "fetch_window_requests_per_second": round(in_window, 2) if in_window else None,
            "fetch_window_share_of_ceiling": round(in_window / ceiling, 3) if in_window else None,
            "peak_arrivals_within_latency": peak_overlap(times, args.latency),
            "no_latency_fetch_window_seconds": round(max(bare_times) - min(bare_times), 2) if len(bare_times) > 1 else None,
        }
    return {
        "run_seconds": round(full.seconds, 2),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "sources": sources,
        "loops_busiest_second": max(loops_per_second.values(), default=0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds added to every answer")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--no-latency-run", action=argparse.BooleanOptionalAction, default=True,
                        help="also load once with no latency added (each source's CPU-bound fetch window)")
    parser.add_argument("--sources", help="comma-separated: load only these (run --sources), each figure then without the others' CPU")
    args = parser.parse_args()

    runs = []
    for number in range(1, args.repeat + 1):
        run = one_run(args)
        runs.append(run)
        print(f"run {number}/{args.repeat}: {run['run_seconds']:.1f}s, load average {run['load_average_before'][0]:.2f} "
              f"before, {run['load_average_after'][0]:.2f} after")
        for name, f in run["sources"].items():
            window = (f"fetch window {f['fetch_window_seconds']:>6.1f}s: {f['fetch_window_requests_per_second']:>6.2f}/s "
                      f"({f['fetch_window_share_of_ceiling']:.0%})") if f["fetch_window_seconds"] else ""
            print(f"  {name:<13} {f['requests']:>5} req, {f['in_flight_allowed']} in flight, ceiling {f['ceiling_per_second']:g}/s | "
                  f"whole {f['seconds']:>6.1f}s: {f['requests_per_second']:>6.2f}/s ({f['share_of_ceiling']:.0%}) | "
                  f"{window} | peak {f['peak_arrivals_within_latency']} | no latency: {f['no_latency_fetch_window_seconds']}s")
        print(f"  loops busiest second: {run['loops_busiest_second']} requests (limit {LOOPS_LIMIT_PER_SECOND:g})")
    names = runs[0]["sources"]
    summary = {
        name: {
            key: statistics.median(r["sources"][name][key] for r in runs if r["sources"].get(name, {}).get(key) is not None)
            for key in ("seconds", "requests_per_second", "share_of_ceiling", "fetch_window_requests_per_second", "fetch_window_share_of_ceiling")
        }
        for name in names
    }
    result = {
        "scale": args.scale,
        "latency_seconds": args.latency,
        "repeat": args.repeat,
        "sources": args.sources,
        "median": summary,
        "loops_busiest_second": max(r["loops_busiest_second"] for r in runs),
        "loops_limit_per_second": LOOPS_LIMIT_PER_SECOND,
        "runs": runs,
    }
    only = "-" + args.sources.replace(",", "-") if args.sources else ""
    save(f"latency_scale{args.scale:g}{only}", result)
    if args.repeat > 1:
        print("median:")
        for name, f in summary.items():
            print(f"  {name:<13} whole {f['requests_per_second']:>6.2f}/s ({f['share_of_ceiling']:.0%}) | "
                  f"fetch window {f['fetch_window_requests_per_second']:>6.2f}/s ({f['fetch_window_share_of_ceiling']:.0%})")


if __name__ == "__main__":
    main()
