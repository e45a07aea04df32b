"""Ours against the peer: the same Retreaver call log loaded the naive way.

    .venv/bin/python benchmarks/bench_peer.py --scale 10

The peer is what a user writes in an afternoon: a ``requests`` loop over the v2
call pages (100 per page, newest first, until an empty page), every call kept in a
list, then one ``dlt.pipeline(...).run(calls, write_disposition="merge",
primary_key="uuid")`` with dlt's defaults (DuckDB's insert_values loader, nested
values unnested into child tables). Ours is ``marketing-etl run --sources retreaver
--no-transform``, which also reads the catalogue and the reports (listed below).
Both in their own process on a fresh warehouse against the same sandbox; wall time
and peak RSS. Results: benchmarks/results/peer_scale<N>.json.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from harness import run_cli, save, start_sandbox, summary

PEER = r'''
import os, sys, requests, dlt
base = os.environ["SOURCES__RETREAVER__CALLS_BASE_URL"].rstrip("/") + "/api/v2/calls.json"
params = {"api_key": os.environ["SOURCES__RETREAVER__API_KEY"], "company_id": os.environ["SOURCES__RETREAVER__COMPANY_ID"],
          "sort_by": "updated_at", "order": "desc", "per_page": 100}
calls, page = [], 1
session = requests.Session()
while True:
    response = session.get(base, params={**params, "page": page}, timeout=120)
    response.raise_for_status()
    rows = response.json()
    if not rows:
        break
    calls.extend(row["call"] for row in rows)
    page += 1
pipeline = dlt.pipeline("peer_retreaver", destination=dlt.destinations.duckdb(sys.argv[1]), dataset_name="retreaver")
pipeline.run(calls, table_name="calls", write_disposition="merge", primary_key="uuid")
print(len(calls))
'''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=10)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()

    sandbox = start_sandbox(args.scale, args.seed)
    ours, peer = [], []
    try:
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory() as tmp:
                env = {**sandbox.env, "DLT_DATA_DIR": str(Path(tmp) / "dlt"), "SOURCES__FX__ENABLED": "false"}
                run = run_cli(["run", "--sources", "retreaver", "--no-transform", "--json", "--warehouse", str(Path(tmp) / "ours.duckdb")], env, sandbox)
                rows = {r["source"]: r["rows"] for r in run.document["runs"] if r["source"] == "retreaver"}
                ours.append({"seconds": round(run.seconds, 2), "peak_rss_mb": round(run.peak_rss_mb), "requests": dict(run.requests), "rows": rows})
                naive = run_cli([], env, sandbox, command=["-c", PEER, str(Path(tmp) / "peer.duckdb")])
                peer.append({"seconds": round(naive.seconds, 2), "peak_rss_mb": round(naive.peak_rss_mb), "requests": dict(naive.requests), "calls": int(naive.stdout.strip() or 0)})
                print(f"ours {run.seconds:.1f}s peak {run.peak_rss_mb:.0f} MB; peer {naive.seconds:.1f}s peak {naive.peak_rss_mb:.0f} MB")
    finally:
        sandbox.stop()
    result = {
        "scale": args.scale,
        "ours_seconds": summary([r["seconds"] for r in ours]),
        "peer_seconds": summary([r["seconds"] for r in peer]),
        "peer_over_ours": summary([p["seconds"] / o["seconds"] for p, o in zip(peer, ours)]),
        "ours_peak_rss_mb": summary([r["peak_rss_mb"] for r in ours]),
        "peer_peak_rss_mb": summary([r["peak_rss_mb"] for r in peer]),
        "ours": ours,
        "peer": peer,
        "environment": {k: v for k, v in os.environ.items() if k.startswith("DATA_WRITER")},
    }
    save(f"peer_scale{args.scale:g}", result)
    for key in ("ours_seconds", "peer_seconds", "peer_over_ours", "ours_peak_rss_mb", "peer_peak_rss_mb"):
        print(f"{key:<18} {result[key]}")


if __name__ == "__main__":
    main()
