"""What every benchmark shares: a sandbox in its own process, the real CLI in
another (so the pipeline's peak RSS is its own), the sandbox's request log, and
one JSON result file per benchmark under ``benchmarks/results/``.

Not part of the test run (a scale-100 world takes minutes per run).
"""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Sandbox:
    proc: subprocess.Popen
    env: dict[str, str]
    base: str

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        response = requests.post(f"{self.base}/_sandbox/{path}", json=body or {}, timeout=600)
        response.raise_for_status()
        return response.json()

    def get(self, path: str, **params: Any) -> Any:
        response = requests.get(f"{self.base}/_sandbox/{path}", params=params, timeout=600)
        response.raise_for_status()
        return response.json()

    def delete(self, path: str) -> None:
        requests.delete(f"{self.base}/_sandbox/{path}", timeout=60).raise_for_status()

    def requests_since(self, seq: int) -> list[dict[str, Any]]:
        return self.get("requests", since=seq)

    def last_seq(self) -> int:
        return max((e["seq"] for e in self.get("requests", since=0)[-1:]), default=0)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def start_sandbox(scale: float, seed: int = 42) -> Sandbox:
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
            value = match.group(2)
            env[match.group(1)] = json.loads(value) if value.startswith('"') else value.strip("'")
        if "SOURCES__RETREAVER__COMPANY_ID" in env and len(env) >= 15:
            break
    base = env["SOURCES__RETREAVER__BASE_URL"].rsplit("/", 1)[0]
    return Sandbox(proc, env, base)


@dataclass
class CliRun:
    seconds: float
    peak_rss_mb: float
    document: dict[str, Any]
    requests: Counter = field(default_factory=Counter)  # api -> requests the sandbox saw
    stdout: str = ""


# Runs one command and reports its wall time and peak RSS. A fresh parent per
# command because RUSAGE_CHILDREN keeps the largest child ever seen, not the last.
_PROBE = (
    "import json,os,resource,subprocess,sys,time;"
    "t=time.monotonic();"
    "p=subprocess.run(sys.argv[1:],env=os.environ,capture_output=True,text=True);"
    "print(json.dumps({'rc':p.returncode,'s':time.monotonic()-t,"
    "'kb':resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,'out':p.stdout,'err':p.stderr[-3000:]}))"
)


def run_cli(args: list[str], env: dict[str, str], sandbox: Sandbox | None = None, command: list[str] | None = None) -> CliRun:
    """One ``marketing-etl`` command (or ``python <command>``) in its own process:
    wall time, its peak RSS, its ``--json`` document if asked, and the requests the
    sandbox saw meanwhile."""
    seq = sandbox.last_seq() if sandbox else 0
    argv = [sys.executable, *command] if command else [sys.executable, "-m", "pipelines.cli", *args]
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )
    doc = json.loads(result.stdout)
    if doc["rc"] not in (0,):
        raise SystemExit(f"{' '.join(argv[1:4])} failed ({doc['rc']}):\n{doc['out'][-3000:]}\n{doc['err']}")
    counts: Counter = Counter()
    if sandbox:
        for entry in sandbox.requests_since(seq):
            counts[entry["api"]] += 1
    document = json.loads(doc["out"]) if "--json" in args else {}
    return CliRun(doc["s"], doc["kb"] / 1024, document, counts, doc["out"])


def summary(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3), "max": round(max(values), 3), "n": len(values)}


def machine() -> dict[str, Any]:
    sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": os.getloadavg(),
        "commit": sha,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def save(name: str, result: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    result = {"benchmark": name, "machine": machine(), **result}
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"results: {path.relative_to(ROOT)}")
    return path
