"""Full and no-op extraction against a scaled sandbox: wall time, peak memory, rows.

    .venv/bin/python benchmarks/bench_extract.py --scale 100 --sources retreaver

The sandbox runs in its own process (so its CPU does not share the pipeline's
GIL), the pipeline in another (so its peak RSS is measured alone, from
getrusage of the child). Not part of the test run: at --scale 100 it takes minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import requests

ROOT = Path(__file__).resolve().parent.parent


def start_sandbox(scale: float, seed: int) -> tuple[subprocess.Popen, dict[str, str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "sandbox", "--port", "0", "--scale", str(scale), "--seed", str(seed)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    env: dict[str, str] = {}
    assert proc.stdout is not None
    for line in proc.stdout:
        match = re.match(r"export (\w+)=(.*)", line.strip())
        if match:
            env[match.group(1)] = json.loads(match.group(2)) if match.group(2).startswith('"') else match.group(2)
        if "SOURCES__RETREAVER__COMPANY_ID" in env and len(env) >= 15:
            break
    return proc, env


def run_pipeline(sources: str, warehouse: Path, env: dict[str, str]) -> tuple[float, float, str]:
    started = time.monotonic()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "run", "--sources", sources, "--warehouse", str(warehouse)],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )
    seconds = time.monotonic() - started
    peak_mb = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    if result.returncode != 0:
        raise SystemExit(f"run failed ({result.returncode}):\n{result.stdout}\n{result.stderr[-3000:]}")
    return seconds, peak_mb, result.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=10)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--sources", default="retreaver")
    args = parser.parse_args()

    started = time.monotonic()
    sandbox, env = start_sandbox(args.scale, args.seed)
    try:
        base = env["SOURCES__RETREAVER__BASE_URL"].rsplit("/", 1)[0]
        print(f"sandbox at scale {args.scale} ready in {time.monotonic() - started:.1f}s")
        truth = requests.get(f"{base}/_sandbox/truth", timeout=600).json()
        with tempfile.TemporaryDirectory() as tmp:
            env["DLT_DATA_DIR"] = str(Path(tmp) / "dlt")
            warehouse = Path(tmp) / "bench.duckdb"
            for label in ("full", "no-op"):
                seconds, peak_mb, out = run_pipeline(args.sources, warehouse, env)
                print(f"{label:<6} run: {seconds:7.1f}s  peak RSS (pipeline process) {peak_mb:7.0f} MB")
                print("       " + out.replace("\n", "\n       "))
            with duckdb.connect(str(warehouse), read_only=True) as con:
                if "retreaver" in args.sources:
                    calls = con.execute("select count(*), count(distinct uuid) from retreaver.calls").fetchone()
                    print(f"retreaver.calls: {calls[0]} rows, {calls[1]} distinct uuids; sandbox truth: {truth['retreaver']['calls']['count']}")
            print(f"warehouse file: {warehouse.stat().st_size / 1e6:.0f} MB")
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=30)


if __name__ == "__main__":
    main()
