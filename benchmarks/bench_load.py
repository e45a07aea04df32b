"""Full load, no-op run, transforms, and the bare-fetch floor, against one sandbox.

    .venv/bin/python benchmarks/bench_load.py --scale 10 --repeat 3

Each repetition, on a fresh warehouse and a fresh dlt state:
1. full load: ``marketing-etl run --no-transform --json`` (every source), wall time,
   the process's peak RSS, rows and requests per source;
2. transforms: ``marketing-etl transform`` on that warehouse;
3. no-op run: the same ``run`` again at once (the world did not move), requests
   and wall time as a share of the full load;
4. the floor: the very requests of the full load (from the sandbox's log) fetched
   by a bare ``requests`` loop that only parses JSON, with the runner's
   concurrency: one thread per source of the first wave, then Loops (paced at the
   same 9 requests/s, its documented limit being 10) and FX.

``--sources`` limits 1-4 to some sources (the floor then replays theirs only).
Results: benchmarks/results/load_scale<N>.json, and a table on stdout.
"""

from __future__ import annotations

import argparse
import base64
import tempfile
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import requests
from harness import Sandbox, run_cli, save, start_sandbox, summary

# api (sandbox prefix) -> the source whose key it takes.
SOURCE_OF_API = {"retreaver_calls": "retreaver"}
FIRST_WAVE = ("listenloop", "marin_social", "inboxfirst", "retreaver", "retreaver_calls")
LOOPS_PER_SECOND = 9.0


def _auth(api: str, env: dict[str, str], entry: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """The real query and headers of a logged request (the log masks secrets as ***)."""
    source = SOURCE_OF_API.get(api, api).upper()
    key = env.get(f"SOURCES__{source}__API_KEY", "")
    query = {k: (key if v == "***" else v) for k, v in entry["query"].items()}
    headers = {}
    if api == "listenloop":
        headers = {"X-User-Token": key, "X-User-Email": env["SOURCES__LISTENLOOP__EMAIL"]}
    elif api == "inboxfirst":
        token = base64.b64encode(f"{env['SOURCES__INBOXFIRST__USERNAME']}:{key}".encode()).decode()
        headers = {"Authorization": f"Basic {token}"}
    elif api == "loops":
        headers = {"Authorization": f"Bearer {key}"}
    return query, headers


def replay(sandbox: Sandbox, entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Fetch the logged GETs again with nothing but requests + json: the floor."""
    by_api: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in entries:
        if entry["method"] == "GET" and entry.get("status") == 200:
            by_api[entry["prefix"]].append(entry)

    def walk(api: str) -> tuple[str, int, float]:
        session = requests.Session()
        started = time.monotonic()
        pace = 1.0 / LOOPS_PER_SECOND if api == "loops" else 0.0
        for i, entry in enumerate(by_api[api]):
            if pace:
                time.sleep(max(0.0, started + i * pace - time.monotonic()))
            query, headers = _auth(api, sandbox.env, entry)
            url = f"{sandbox.base}/{api}{entry['path']}" + (f"?{urlencode(query)}" if query else "")
            response = session.get(url, headers=headers, timeout=120)
            # Even a loop paced under Loops' limit can be told to wait when the machine
            # stalls and its requests bunch up; a bare script would wait and ask again.
            while response.status_code == 429:
                throttled[api] += 1
                time.sleep(float(response.headers.get("Retry-After") or 1))
                response = session.get(url, headers=headers, timeout=120)
            response.raise_for_status()
            response.json()
        return api, len(by_api[api]), time.monotonic() - started

    throttled: Counter[str] = Counter()
    started = time.monotonic()
    first = [a for a in by_api if a in FIRST_WAVE]
    per_api = {}
    with ThreadPoolExecutor(max_workers=max(1, len(first))) as pool:
        for api, n, seconds in pool.map(walk, first):
            per_api[api] = {"requests": n, "seconds": round(seconds, 2)}
    for api in [a for a in by_api if a not in FIRST_WAVE]:
        _, n, seconds = walk(api)
        per_api[api] = {"requests": n, "seconds": round(seconds, 2)}
    for api, n in throttled.items():
        per_api[api]["throttled"] = n
    return {"seconds": time.monotonic() - started, "per_api": per_api}


def source_runs(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The ops.runs rows of the sources (not the transforms') of a ``run --json``."""
    return [r for r in document.get("runs", []) if r["source"] != "transforms"]


def rows_by_source(document: dict[str, Any]) -> dict[str, int]:
    return {r["source"]: r["rows_total"] for r in source_runs(document)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=10)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sources", default=None, help="comma-separated subset (default: all)")
    args = parser.parse_args()

    started = time.monotonic()
    sandbox = start_sandbox(args.scale, args.seed)
    print(f"sandbox at scale {args.scale:g} ready in {time.monotonic() - started:.1f}s")
    selection = ["--sources", args.sources] if args.sources else []
    reps: list[dict[str, Any]] = []
    try:
        for rep in range(args.repeat):
            with tempfile.TemporaryDirectory() as tmp:
                env = {**sandbox.env, "DLT_DATA_DIR": str(Path(tmp) / "dlt")}
                warehouse = str(Path(tmp) / "bench.duckdb")
                seq = sandbox.last_seq()
                full = run_cli(["run", "--no-transform", "--json", "--warehouse", warehouse, *selection], env, sandbox)
                full_entries = sandbox.requests_since(seq)
                print(f"rep {rep + 1}: full {full.seconds:.1f}s, peak {full.peak_rss_mb:.0f} MB", flush=True)
                transform = run_cli(["transform", "--warehouse", warehouse], env) if not args.sources else None
                if transform:
                    print(f"rep {rep + 1}: transform {transform.seconds:.1f}s", flush=True)
                noop = run_cli(["run", "--no-transform", "--json", "--warehouse", warehouse, *selection], env, sandbox)
                print(f"rep {rep + 1}: no-op {noop.seconds:.1f}s ({sum(noop.requests.values())} requests)", flush=True)
                floor = replay(sandbox, full_entries)
                rows = rows_by_source(full.document)
                rep_result = {
                    "full": {
                        "seconds": round(full.seconds, 2),
                        "peak_rss_mb": round(full.peak_rss_mb),
                        "rows": rows,
                        "rows_total": sum(rows.values()),
                        "requests": dict(full.requests),
                        "per_source_seconds": {r["source"]: round(r["seconds"], 2) for r in source_runs(full.document)},
                        "warehouse_mb": round(Path(warehouse).stat().st_size / 1e6),
                    },
                    "transform": {"seconds": round(transform.seconds, 2), "peak_rss_mb": round(transform.peak_rss_mb)} if transform else None,
                    "noop": {
                        "seconds": round(noop.seconds, 2),
                        "peak_rss_mb": round(noop.peak_rss_mb),
                        "requests": dict(noop.requests),
                        "rows": rows_by_source(noop.document),
                    },
                    "floor": floor,
                }
                reps.append(rep_result)
                print(
                    f"rep {rep + 1}: full {full.seconds:.1f}s ({sum(rows.values())} rows, {sum(full.requests.values())} requests, "
                    f"peak {full.peak_rss_mb:.0f} MB); floor {floor['seconds']:.1f}s; "
                    f"transform {transform.seconds if transform else float('nan'):.1f}s; "
                    f"no-op {noop.seconds:.1f}s ({sum(noop.requests.values())} requests)"
                )
    finally:
        sandbox.stop()

    full_s = [r["full"]["seconds"] for r in reps]
    noop_req = [sum(r["noop"]["requests"].values()) / max(1, sum(r["full"]["requests"].values())) for r in reps]
    result = {
        "scale": args.scale,
        "sources": args.sources or "all",
        "full_seconds": summary(full_s),
        "full_rows_per_second": summary([r["full"]["rows_total"] / r["full"]["seconds"] for r in reps]),
        "full_peak_rss_mb": summary([r["full"]["peak_rss_mb"] for r in reps]),
        "floor_seconds": summary([r["floor"]["seconds"] for r in reps]),
        "ratio_to_floor": summary([r["full"]["seconds"] / r["floor"]["seconds"] for r in reps]),
        "transform_seconds": summary([r["transform"]["seconds"] for r in reps]) if reps[0]["transform"] else None,
        "transform_share_of_full": summary([r["transform"]["seconds"] / r["full"]["seconds"] for r in reps]) if reps[0]["transform"] else None,
        "noop_seconds": summary([r["noop"]["seconds"] for r in reps]),
        "noop_request_share": summary(noop_req),
        "noop_time_share": summary([r["noop"]["seconds"] / r["full"]["seconds"] for r in reps]),
        "noop_requests_by_api": dict(Counter(reps[-1]["noop"]["requests"])),
        "full_requests_by_api": dict(Counter(reps[-1]["full"]["requests"])),
        "repetitions": reps,
    }
    name = f"load_scale{args.scale:g}" + (f"_{args.sources.replace(',', '+')}" if args.sources else "")
    save(name, result)
    for key in ("full_seconds", "full_rows_per_second", "full_peak_rss_mb", "floor_seconds", "ratio_to_floor",
                "transform_seconds", "noop_seconds", "noop_request_share", "noop_time_share"):
        print(f"{key:<24} {result[key]}")
    print("no-op requests by api:", result["noop_requests_by_api"])
    print("full requests by api: ", result["full_requests_by_api"])


if __name__ == "__main__":
    main()
