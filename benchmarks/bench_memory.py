"""Where a run's memory goes: the pipeline process's RSS over time, per phase.

    .venv/bin/python benchmarks/bench_memory.py --scale 10 [--sources a,b] [--repeat 2]

Starts a sandbox, then runs ``marketing-etl run --no-transform`` (``--transforms``:
``marketing-etl run``, the marts build marked as phase "transforms build"; fresh
warehouse and dlt state) in its own process with dlt's ``Pipeline.extract``, ``normalize``
and ``load`` wrapped to print when each source enters and leaves each phase. The
process's ``VmRSS`` is sampled from ``/proc/<pid>/status`` every ``--every``
seconds (default 0.25); ``VmHWM`` at its end is the peak. Prints, per source and
phase, the RSS at its start and the highest RSS seen while it ran, and which phases
were running at the peak. ``--tracemalloc`` also prints, at the end of each phase,
the Python heap's current and peak size and the lines holding most of it, glibc's
heap in use and freed-but-kept (``mallinfo2``), pyarrow's pool and the RSS that
is anonymous memory rather than mapped library files (slower: only to
tell who holds the memory).

Results: benchmarks/results/memory_scale<N>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from harness import ROOT, save, start_sandbox

# Runs the CLI with dlt's three steps wrapped: "@phase <t> <source> <phase> start|end [py_mb py_peak_mb]".
_WRAPPER = r"""
import ctypes, json, sys, time, threading, tracemalloc
import dlt
from dlt.pipeline.pipeline import Pipeline
TRACE = sys.argv.pop(1) == "1"
if TRACE:
    tracemalloc.start()

class _MallInfo2(ctypes.Structure):
    _fields_ = [(f, ctypes.c_size_t) for f in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

def _heap():
    # Who holds the memory: live Python objects (tracemalloc, by line), glibc's heap
    # in use and free-but-kept (mallinfo2), and pyarrow's pool.
    mb = lambda n: round(n / 2**20, 1)
    out = {"python_mb": mb(tracemalloc.get_traced_memory()[0])}
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
        m = libc.mallinfo2()
        out.update(malloc_in_use_mb=mb(m.uordblks + m.hblkhd), malloc_free_kept_mb=mb(m.fordblks),
                   malloc_mmapped_mb=mb(m.hblkhd))
    except (OSError, AttributeError):
        pass
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("RssAnon:", "RssFile:")):
                key, kb, _ = line.split()
                out[key.rstrip(":").lower() + "_mb"] = round(int(kb) / 1024, 1)
    import pyarrow
    out["arrow_mb"] = mb(pyarrow.total_allocated_bytes())
    stats = tracemalloc.take_snapshot().statistics("lineno")[:8]
    out["top"] = [[str(s.traceback[0]), mb(s.size), s.count] for s in stats]
    return out
def _wrap(step):
    original = getattr(Pipeline, step)
    def wrapped(self, *a, **k):
        name = self.pipeline_name.removeprefix("marketing_etl_")
        print(f"@phase {time.monotonic():.3f} {name} {step} start", file=sys.stderr, flush=True)
        try:
            return original(self, *a, **k)
        finally:
            extra = ""
            if TRACE:
                cur, peak = tracemalloc.get_traced_memory()
                extra = f" {cur / 2**20:.0f} {peak / 2**20:.0f}"
                print(f"@heap {name} {step} {json.dumps(_heap())}", file=sys.stderr, flush=True)
            print(f"@phase {time.monotonic():.3f} {name} {step} end{extra}", file=sys.stderr, flush=True)
    setattr(Pipeline, step, wrapped)
for step in ("extract", "normalize", "load"):
    _wrap(step)
import pipelines.dbt
_build = pipelines.dbt.build
def _marked_build(*a, **k):
    # The marts build (``run`` without --no-transform) as phase "transforms build".
    print(f"@phase {time.monotonic():.3f} transforms build start", file=sys.stderr, flush=True)
    try:
        return _build(*a, **k)
    finally:
        if TRACE:
            print(f"@heap transforms build {json.dumps(_heap())}", file=sys.stderr, flush=True)
        print(f"@phase {time.monotonic():.3f} transforms build end", file=sys.stderr, flush=True)
pipelines.dbt.build = _marked_build
from pipelines.cli import main
sys.argv = ["marketing-etl", *sys.argv[1:]]
sys.exit(main())
"""


def _status(pid: int) -> dict[str, int]:
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, kb, _ = line.split()
                values[key.rstrip(":")] = int(kb)
    return values


def run_once(env: dict[str, str], args: list[str], every: float, trace: bool) -> dict[str, Any]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRAPPER, "1" if trace else "0", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    t0 = time.monotonic()
    events: list[tuple[float, str, str, str, list[str]]] = []
    tail: list[str] = []
    heaps: dict[tuple[str, str], dict[str, Any]] = {}

    def read_stderr() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            if line.startswith("@heap "):
                _, source, step, body = line.split(" ", 3)
                heaps[(source, step)] = json.loads(body)
            elif line.startswith("@phase "):
                _, t, source, step, edge, *extra = line.split()
                events.append((float(t) - t0, source, step, edge, extra))
            else:
                tail.append(line)
                del tail[:-50]

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    samples: list[tuple[float, int]] = []
    hwm = 0
    while proc.poll() is None:
        try:
            status = _status(proc.pid)
        except (FileNotFoundError, ProcessLookupError, ValueError):
            break
        samples.append((time.monotonic() - t0, status.get("VmRSS", 0)))
        hwm = max(hwm, status.get("VmHWM", 0))
        time.sleep(every)
    proc.wait()
    reader.join(timeout=5)
    seconds = time.monotonic() - t0
    if proc.returncode != 0:
        print("".join(tail), file=sys.stderr)
        raise SystemExit(f"run exited {proc.returncode}")

    # Pair start/end events into phases; the highest RSS sample inside each.
    open_: dict[tuple[str, str], float] = {}
    phases = []
    for t, source, step, edge, extra in events:
        if edge == "start":
            open_[(source, step)] = t
            continue
        start = open_.pop((source, step), 0.0)
        inside = [kb for s, kb in samples if start <= s <= t]
        before = [kb for s, kb in samples if s <= start]
        phases.append({
            "source": source,
            "phase": step,
            "start_s": round(start, 1),
            "end_s": round(t, 1),
            "rss_at_start_mb": round((before[-1] if before else 0) / 1024),
            "rss_max_mb": round(max(inside, default=0) / 1024),
            **({"python_mb": float(extra[0]), "python_peak_mb": float(extra[1])} if extra else {}),
            **({"heap_at_end": heaps[(source, step)]} if (source, step) in heaps else {}),
        })
    peak_t, peak_kb = max(samples, key=lambda s: s[1]) if samples else (0.0, 0)
    at_peak = [f"{p['source']}.{p['phase']}" for p in phases if p["start_s"] <= peak_t <= p["end_s"]]
    return {
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(hwm / 1024),
        "peak_sampled_mb": round(peak_kb / 1024),
        "peak_at_s": round(peak_t, 1),
        "phases_at_peak": at_peak,
        "phases": phases,
        "timeline": [(round(s, 2), round(kb / 1024)) for s, kb in samples],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=10)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--sources", default=None, help="comma-separated subset (default: all)")
    parser.add_argument("--every", type=float, default=0.25, help="seconds between RSS samples")
    parser.add_argument("--tracemalloc", action="store_true", help="also trace the Python heap (slower)")
    parser.add_argument("--name", default=None, help="result file name (default memory_scale<N>)")
    parser.add_argument("--transforms", action="store_true",
                        help="the whole run as users run it: loads, then the marts build, the serving file and the dashboard")
    args = parser.parse_args()

    sandbox = start_sandbox(args.scale, args.seed)
    selection = ["--sources", args.sources] if args.sources else []
    reps = []
    try:
        for rep in range(args.repeat):
            with tempfile.TemporaryDirectory() as tmp:
                env = {**sandbox.env, "DLT_DATA_DIR": str(Path(tmp) / "dlt")}
                load = os.getloadavg()
                steps = [] if args.transforms else ["--no-transform"]
                result = run_once(env, ["run", *steps, "--warehouse", str(Path(tmp) / "m.duckdb"), *selection],
                                  args.every, args.tracemalloc)
                result["load_average_at_start"] = load
                reps.append(result)
            print(f"rep {rep + 1}: {result['seconds']} s, peak RSS {result['peak_rss_mb']} MB "
                  f"(sampled {result['peak_sampled_mb']} MB at {result['peak_at_s']} s during "
                  f"{', '.join(result['phases_at_peak']) or '-'}), load {load[0]:.1f}")
            for p in result["phases"]:
                py = f"  python {p['python_mb']:.0f} MB (peak {p['python_peak_mb']:.0f})" if "python_mb" in p else ""
                print(f"  {p['start_s']:7.1f}-{p['end_s']:7.1f} s  {p['source']:13s} {p['phase']:9s} "
                      f"RSS {p['rss_at_start_mb']:4d} -> max {p['rss_max_mb']:4d} MB{py}")
                heap = p.get("heap_at_end")
                if heap:
                    print("      at its end: " + ", ".join(f"{k} {v}" for k, v in heap.items() if k != "top"))
                    for where, mb, count in heap["top"][:4]:
                        print(f"        {mb:7.1f} MB in {count:8d} blocks  {where}")
    finally:
        sandbox.stop()
    save(args.name or f"memory_scale{args.scale:g}",
         {"scale": args.scale, "sources": args.sources, "transforms": args.transforms, "repetitions": reps})


if __name__ == "__main__":
    main()
