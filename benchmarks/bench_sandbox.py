"""How fast the sandbox itself serves pages: calls/s and pages/s per API.

    .venv/bin/python benchmarks/bench_sandbox.py --scale 10 --repeat 2

The sandbox runs in its own process (as for every benchmark); one keep-alive
``http.client`` connection per API walks what a full load reads, one page at a
time. Only request -> last byte of the body is timed: the JSON is parsed (to count
rows) outside the clock, so the figures are the sandbox's, not the client's. That
parse is also the time a client spends between two pages, which the sandbox uses
to render the next Retreaver call page ahead (read-ahead): the figures are what a
client that reads its pages sees; one that asks back-to-back would wait longer.

Walks (rows are what the page holds: calls, statistics rows, links...):
- retreaver_calls: v2 call log, sort_by=updated_at, 100 a page, every page;
- retreaver: v1 call log, created_at desc, 100 a page, every page; and the
  daily/campaign reports over the whole history;
- marin_social: every media plan's statistics, aggregate=day at level campaign
  and ad over the whole history, 300 a page, every page;
- inboxfirst: every list's campaigns, each campaign's details and link_stats
  (500 a page, every page);
- listenloop: the campaign index (100 a page) and every campaign;
- fx: the time series over the history, and the latest fixing;
- loops: contact lookups, paced under its 10 requests/s limit (so: ms/request).

Repetition 1 meets cold caches, later ones warm caches (a second walk of the same
unchanged world). Then all first-wave walks run at once, one thread each, as the
pipeline's first wave does. Results: benchmarks/results/sandbox-<date>.json.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

from harness import Sandbox, save, start_sandbox, summary

LOOPS_PACE = 1 / 9  # seconds between Loops requests: under its documented 10/s


class Walker:
    """One keep-alive connection; times each request until its body is read."""

    def __init__(self, base: str, headers: dict[str, str] | None = None, query: dict[str, str] | None = None):
        parts = urlsplit(base)
        self.host, self.port, self.prefix = parts.hostname or "127.0.0.1", parts.port or 80, parts.path.rstrip("/")
        self.headers, self.query = headers or {}, query or {}
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=600)
        self.pages = 0
        self.rows = 0
        self.bytes = 0
        self.seconds = 0.0

    def get(self, path: str, count: Callable[[Any], int] = len, **params: Any) -> Any:
        query = urlencode({**self.query, **params})
        started = time.perf_counter()
        self.conn.request("GET", f"{self.prefix}{path}?{query}", headers=self.headers)
        response = self.conn.getresponse()
        body = response.read()
        self.seconds += time.perf_counter() - started
        if response.status != 200:
            raise SystemExit(f"GET {self.prefix}{path}?{query}: {response.status} {body[:300]!r}")
        data = json.loads(body)
        self.pages += 1
        self.rows += count(data)
        self.bytes += len(body)
        return data

    def figures(self) -> dict[str, Any]:
        seconds = max(self.seconds, 1e-9)
        return {
            "pages": self.pages,
            "rows": self.rows,
            "mb": round(self.bytes / 1e6, 1),
            "seconds": round(self.seconds, 3),
            "pages_per_second": round(self.pages / seconds, 1),
            "rows_per_second": round(self.rows / seconds),
            "ms_per_page": round(1000 * seconds / max(1, self.pages), 2),
        }


def _pages(fetch: Callable[[int], list[Any]], first: int = 1) -> Iterator[list[Any]]:
    """Page numbers from ``first`` until a page comes back empty."""
    page = first
    while True:
        rows = fetch(page)
        if not rows:
            return
        yield rows
        page += 1


# ----------------------------------------------------------------------- walks
def walk_retreaver_v2(sb: Sandbox) -> Walker:
    w = Walker(sb.env["SOURCES__RETREAVER__CALLS_BASE_URL"], query={"api_key": sb.env["SOURCES__RETREAVER__API_KEY"]})
    for _ in _pages(lambda p: w.get("/api/v2/calls.json", sort_by="updated_at", order="desc", per_page=100, page=p)):
        pass
    return w


def walk_retreaver_v1(sb: Sandbox, history: tuple[str, str]) -> Walker:
    w = Walker(sb.env["SOURCES__RETREAVER__BASE_URL"], query={"api_key": sb.env["SOURCES__RETREAVER__API_KEY"]})
    for _ in _pages(lambda p: w.get("/calls.json", sort_by="created_at", order="desc", per_page=100, page=p)):
        pass
    for facet in ("daily", "campaign"):
        report = {"domain": "calls", "facet": facet, "created_at_start": history[0], "created_at_end": history[1], "per_page": 100}
        for _ in _pages(lambda p, report=report: w.get("/api/v1/reports.json", lambda d: len(d["data"]), page=p, **report)["data"]):
            pass
    return w


def walk_marin(sb: Sandbox, start: datetime, end: datetime) -> Walker:
    w = Walker(sb.env["SOURCES__MARIN_SOCIAL__BASE_URL"], query={"key": sb.env["SOURCES__MARIN_SOCIAL__API_KEY"]})
    rows = lambda d: len(d["data"])  # noqa: E731
    plans = w.get("/clients", rows, limit=300)["data"]
    w.get("/campaigns", rows, limit=300)
    bounds = {"start_date": int(start.timestamp()), "end_date": int(end.timestamp())}
    for plan in plans:
        for level in ("campaign", "ad"):
            page = 1
            while True:
                body = w.get(f"/clients/{plan['id']}/statistics", rows, aggregate="day", level=level, limit=300, page=page, **bounds)
                if body["range"]["next"] is None:
                    break
                page += 1
    return w


def walk_inboxfirst(sb: Sandbox) -> Walker:
    token = base64.b64encode(f"{sb.env['SOURCES__INBOXFIRST__USERNAME']}:{sb.env['SOURCES__INBOXFIRST__API_KEY']}".encode()).decode()
    w = Walker(sb.env["SOURCES__INBOXFIRST__BASE_URL"], headers={"Authorization": f"Basic {token}"})
    rows = lambda d: len(d["data"]) if isinstance(d["data"], list) else 1  # noqa: E731
    for list_id in (1, 2, 3):
        for campaign in w.get(f"/ga/api/v2/mailing_lists/{list_id}/campaigns", rows)["data"]:
            w.get(f"/ga/api/v2/campaigns/{campaign['id']}", rows)
            page = 0
            while True:
                body = w.get(f"/ga/api/v2/campaigns/{campaign['id']}/link_stats", lambda d: len(d["data"]["links"]), per_page=500, page=page)
                page += 1
                if page >= body["num_pages"]:
                    break
    return w


def walk_listenloop(sb: Sandbox) -> Walker:
    headers = {"X-User-Token": sb.env["SOURCES__LISTENLOOP__API_KEY"], "X-User-Email": sb.env["SOURCES__LISTENLOOP__EMAIL"]}
    w = Walker(sb.env["SOURCES__LISTENLOOP__BASE_URL"], headers=headers)
    ids = [c["id"] for rows in _pages(lambda p: w.get("/campaigns", per_page=100, page=p)) for c in rows]
    for campaign_id in ids:
        w.get(f"/campaigns/{campaign_id}", lambda d: 1)
    return w


def walk_fx(sb: Sandbox, history: tuple[str, str]) -> Walker:
    w = Walker(sb.env["SOURCES__FX__BASE_URL"])
    w.get(f"/{history[0]}..{history[1]}", lambda d: len(d["rates"]))
    w.get("/latest", lambda d: 1)
    w.get("/currencies")
    return w


def walk_loops(sb: Sandbox, emails: list[str]) -> Walker:
    w = Walker(sb.env["SOURCES__LOOPS__BASE_URL"], headers={"Authorization": f"Bearer {sb.env['SOURCES__LOOPS__API_KEY']}"})
    for email in emails:
        started = time.monotonic()
        w.get("/api/v1/contacts/find", email=email)
        time.sleep(max(0.0, LOOPS_PACE - (time.monotonic() - started)))
    return w


def walks(sb: Sandbox) -> dict[str, Callable[[], Walker]]:
    now = datetime.fromisoformat(sb.get("clock")["now"])
    start = datetime.fromisoformat(sb.get("clock")["start"])
    history = (start.date().isoformat(), (now + timedelta(days=1)).date().isoformat())
    # A few emails that exist (from the truth-free ListenLoop-independent world): use Retreaver's email tags.
    calls = Walker(sb.env["SOURCES__RETREAVER__CALLS_BASE_URL"], query={"api_key": sb.env["SOURCES__RETREAVER__API_KEY"]})
    sample = calls.get("/api/v2/calls.json", per_page=100)
    emails = sorted({c["call"]["tags"]["email"] for c in sample if "email" in c["call"]["tags"]})[:10] or ["nobody@example.test"]
    return {
        "retreaver_calls": lambda: walk_retreaver_v2(sb),
        "retreaver": lambda: walk_retreaver_v1(sb, history),
        "marin_social": lambda: walk_marin(sb, start, now + timedelta(days=1)),
        "inboxfirst": lambda: walk_inboxfirst(sb),
        "listenloop": lambda: walk_listenloop(sb),
        "fx": lambda: walk_fx(sb, history),
        "loops": lambda: walk_loops(sb, emails),
    }


def concurrent(plan: dict[str, Callable[[], Walker]], names: list[str]) -> dict[str, Any]:
    """The first-wave walks side by side, one thread each: aggregate throughput."""
    out: dict[str, Walker] = {}

    def run(name: str) -> None:
        out[name] = plan[name]()

    started = time.perf_counter()
    threads = [threading.Thread(target=run, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    pages = sum(w.pages for w in out.values())
    return {
        "apis": names,
        "wall_seconds": round(wall, 2),
        "pages_per_second": round(pages / wall, 1),
        "calls_per_second": round(sum(out[n].rows for n in names if n.startswith("retreaver")) / wall),
        "per_api": {n: out[n].figures() for n in names},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=10)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeat", type=int, default=2, help="walks per API (the first meets cold caches)")
    parser.add_argument("--apis", default=None, help="comma-separated subset (default: all)")
    args = parser.parse_args()

    started = time.monotonic()
    sb = start_sandbox(args.scale, args.seed)
    ready = time.monotonic() - started
    print(f"sandbox at scale {args.scale:g} ready in {ready:.1f}s")
    try:
        plan = walks(sb)
        names = args.apis.split(",") if args.apis else list(plan)
        per_api: dict[str, list[dict[str, Any]]] = {}
        for name in names:
            per_api[name] = []
            for rep in range(args.repeat):
                figures = plan[name]().figures()
                per_api[name].append(figures)
                print(
                    f"{name:<16} rep {rep + 1}: {figures['pages']:>5} pages {figures['rows']:>7} rows in {figures['seconds']:>7.2f}s  "
                    f"{figures['pages_per_second']:>7.1f} pages/s {figures['rows_per_second']:>8} rows/s {figures['ms_per_page']:>7.2f} ms/page"
                )
        wave = [n for n in ("retreaver_calls", "retreaver", "marin_social", "inboxfirst", "listenloop") if n in names]
        together = concurrent(plan, wave) if len(wave) > 1 else None
        if together:
            print(f"first wave at once ({', '.join(wave)}): {together['wall_seconds']}s, {together['pages_per_second']} pages/s, "
                  f"{together['calls_per_second']} Retreaver calls/s")
    finally:
        sb.stop()

    result = {
        "scale": args.scale,
        "seed": args.seed,
        "sandbox_ready_seconds": round(ready, 1),
        "note": "rows: calls (retreaver*), statistics rows (marin_social), campaigns + links (inboxfirst), campaigns (listenloop), "
        "days (fx), contacts (loops). Timed: request to last body byte, one keep-alive connection per API.",
        "per_api": {
            name: {
                "repetitions": reps,
                "rows_per_second": summary([r["rows_per_second"] for r in reps]),
                "pages_per_second": summary([r["pages_per_second"] for r in reps]),
                "ms_per_page": summary([r["ms_per_page"] for r in reps]),
            }
            for name, reps in per_api.items()
        },
        "first_wave_concurrent": together,
    }
    save(f"sandbox-{datetime.now(UTC).date().isoformat()}", result)


if __name__ == "__main__":
    main()
