"""Latency-bound throughput: the sandbox answers every request 100 ms late.

    .venv/bin/python benchmarks/bench_latency.py --scale 1 --latency 0.1

Each source walks its pages one at a time (a page's next link or cursor is in the
page before it), and the sources of the first wave run side by side; so the
ceiling of one source is 1 / latency requests per second, and Loops' is also its
rate limit (doc: 10 requests/s; we pace at 9). Reported per source: requests per
second achieved over the source's whole time (extract, normalize and load), that
as a share of its ceiling, and Loops' busiest second as the sandbox logged it.
Results: benchmarks/results/latency_scale<N>.json.
"""

from __future__ import annotations

import argparse
import tempfile
from collections import Counter
from datetime import datetime
from pathlib import Path

from harness import run_cli, save, start_sandbox

LOOPS_LIMIT_PER_SECOND = 10.0  # doc "Rate Limiting"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds added to every answer")
    args = parser.parse_args()

    sandbox = start_sandbox(args.scale, args.seed)
    try:
        sandbox.post("faults", {"kind": "slow", "delay": args.latency, "rate": 1.0})
        with tempfile.TemporaryDirectory() as tmp:
            env = {**sandbox.env, "DLT_DATA_DIR": str(Path(tmp) / "dlt")}
            seq = sandbox.last_seq()
            full = run_cli(["run", "--no-transform", "--json", "--warehouse", str(Path(tmp) / "w.duckdb")], env, sandbox)
            entries = sandbox.requests_since(seq)
        sandbox.delete("faults")
    finally:
        sandbox.stop()

    per_second: Counter = Counter()
    for entry in entries:
        if entry["api"] == "loops":
            per_second[datetime.fromisoformat(entry["at"]).replace(microsecond=0)] += 1
    ceiling = 1.0 / args.latency
    sources = {}
    for run in full.document["runs"]:
        if run["source"] == "transforms" or not run["requests"]:
            continue
        limit = min(ceiling, LOOPS_LIMIT_PER_SECOND) if run["source"] == "loops" else ceiling
        achieved = run["requests"] / run["seconds"]
        sources[run["source"]] = {
            "requests": run["requests"],
            "seconds": round(run["seconds"], 2),
            "requests_per_second": round(achieved, 2),
            "ceiling_per_second": limit,
            "share_of_ceiling": round(achieved / limit, 3),
        }
    result = {
        "scale": args.scale,
        "latency_seconds": args.latency,
        "run_seconds": round(full.seconds, 2),
        "sources": sources,
        "loops_busiest_second": max(per_second.values(), default=0),
        "loops_limit_per_second": LOOPS_LIMIT_PER_SECOND,
    }
    save(f"latency_scale{args.scale:g}", result)
    for name, figures in sources.items():
        print(f"{name:<13} {figures['requests']:>5} requests in {figures['seconds']:>6.1f}s: "
              f"{figures['requests_per_second']:>5.2f}/s of {figures['ceiling_per_second']:g}/s ({figures['share_of_ceiling']:.0%})")
    print(f"loops busiest second: {result['loops_busiest_second']} requests (limit {LOOPS_LIMIT_PER_SECOND:g})")


if __name__ == "__main__":
    main()
