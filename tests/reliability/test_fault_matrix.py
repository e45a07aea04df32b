"""Fault matrix: every vendor source against every sandbox fault (docs/reliability.md).

One case = one fault, injected on every API at once, then one `marketing-etl run`
of the five vendor sources (in-process, through the CLI: exit code, JSON summary
and ``ops.runs`` as a scheduler sees them). Each source must end in one of:

* ``loaded`` and its tables equal to the sandbox's truth (row counts, sums, keys
  unique), the checks of tests/sources/test_<api>.py;
* ``loaded`` with entities skipped after error answers, each counted and named in
  ``ops.runs`` (per-entity endpoints: one InboxFirst campaign, one Loops email);
* ``failed`` loudly: exit 1 (3 if every source failed), the endpoint named in the
  error, the ``ops.runs`` row saying the same.

Then the faults are cleared and a clean run of every source not already equal to
the truth must complete it, equal to the truth: nothing lost, nothing duplicated.

The world is small (scale 0.02, Loops limited to a few configured emails: it is
paced at 9 requests/s) and the storms are capped so the module runs in a few
minutes; ``--long`` lifts the caps and adds seeds.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from pipelines.cli import main
from sandbox.control import SandboxControl
from sandbox.world import World
from tests.conftest import TEST_NOW, TEST_SEED
from tests.sources import test_inboxfirst, test_listenloop, test_marin_social, test_retreaver
from tests.sources.conftest import Warehouse

SCALE = 0.02
VENDORS = ("listenloop", "marin_social", "inboxfirst", "retreaver", "loops")
LOOPS_EMAILS = 8
LONG_SEEDS = (TEST_SEED, 11, 23)
# One endpoint per source that answers 500 on every call ("persistent 5xx").
ONE_ENDPOINT = {
    "listenloop": "/campaigns",
    "marin_social": "/statistics",
    "inboxfirst": "/link_stats",  # per campaign: skipped and counted
    "retreaver": "/reports.json",
    "loops": "/contacts/find",  # per email: skipped and counted
}


def rules(case: str, long: bool) -> list[dict[str, Any]]:
    """The fault rules of a case, one per API (caps keep CI short; --long lifts them)."""
    cap = (lambda n: None) if long else (lambda n: n)  # noqa: E731
    per_api = {
        "429_retry_after": dict(kind="429", rate=0.33, retry_after=1, count=cap(4)),
        "429_no_retry_after": dict(kind="429", rate=0.33, retry_after=None, count=cap(30)),
        "5xx_burst": dict(kind="503", rate=1.0, count=3),
        "5xx_scattered": dict(kind="500", rate=0.2, count=cap(10)),
        "drop": dict(kind="drop", rate=0.33, count=cap(10)),
        "slow": dict(kind="slow", rate=0.33, delay=4.0, count=cap(2)),
        "truncate": dict(kind="truncate", rate=0.33, count=cap(6)),
        "html200": dict(kind="html200", rate=0.2, count=1),
        "advance": dict(kind="advance", rate=0.3, count=1, advance_hours=12),
    }
    if case == "5xx_one_endpoint":
        return [dict(kind="500", api=api, rate=1.0, path_contains=path) for api, path in ONE_ENDPOINT.items()]
    out = [dict(api=api, **per_api[case]) for api in VENDORS]
    for rule in out:
        if rule["api"] == "listenloop" and rule["rate"] < 1:
            # Two requests a run: a share of them would often be none. Hit the first.
            rule.update(rate=1.0, count=1)
    return out


CASES = (
    "429_retry_after", "429_no_retry_after", "5xx_burst", "5xx_scattered", "5xx_one_endpoint",
    "drop", "slow", "truncate", "html200", "advance",
)


class Env:
    def __init__(self, control: SandboxControl, seed: int, root: Path, monkeypatch: pytest.MonkeyPatch):
        self.control, self.seed, self.root, self.mp = control, seed, root, monkeypatch
        root.mkdir(parents=True, exist_ok=True)
        control.reset(seed=seed, scale=SCALE, now=TEST_NOW.isoformat())
        for name, value in control.env().items():
            monkeypatch.setenv(name, value)
        self.emails = World(seed=seed, scale=SCALE, now=TEST_NOW).contact_emails[:LOOPS_EMAILS]
        monkeypatch.setenv("SOURCES__LOOPS__EMAILS", ",".join(self.emails))
        # Loops would add the emails of Retreaver's calls: its truth would then depend
        # on whether Retreaver failed in the same run.
        monkeypatch.setenv("SOURCES__LOOPS__EMAIL_COLUMNS", "[]")
        monkeypatch.setenv("SOURCES__FX__ENABLED", "false")  # not a vendor: see tests/sources/test_fx.py
        monkeypatch.setenv("DLT_DATA_DIR", str(root / "dlt"))
        monkeypatch.setenv("RUNTIME__REQUEST_BACKOFF_FACTOR", "0.05")
        monkeypatch.setenv("RUNTIME__REQUEST_MAX_RETRY_DELAY", "2")
        monkeypatch.setenv("RUNTIME__LOG_LEVEL", "ERROR")
        self.warehouse = Warehouse(root / "w.duckdb")
        # In-process CLI: pipelines.logs binds sys.stderr as a default argument at
        # import time, which is pytest's capture of an earlier test: give it today's.
        from pipelines import logs

        for name in ("configure", "progress_factory"):
            original = getattr(logs, name)
            monkeypatch.setattr(logs, name, lambda *a, _f=original, **k: _f(*a, **{"stream": sys.stderr, **k}))

    def run(self, capsys: pytest.CaptureFixture, sources: tuple[str, ...] = VENDORS) -> tuple[int, dict[str, Any], str]:
        capsys.readouterr()
        code = main(["run", "--json", "--no-transform", "--sources", ",".join(sources), "--warehouse", str(self.warehouse.path)])
        out, err = capsys.readouterr()
        assert out.strip(), f"exit {code}, no JSON summary; stderr: {err}"
        return code, json.loads(out), err

    def recorded(self, run_id: str) -> dict[str, tuple]:
        rows = self.warehouse.query("select source, status, error, skipped_entities, skipped from ops.runs where run_id = ?", [run_id])
        return {r[0]: r[1:] for r in rows}


_LOOPS_TRUTH: dict[tuple, set[tuple]] = {}


def loops_reference(env: Env, capsys) -> set[tuple]:
    """Loops' truth for the configured emails: what a clean lookup of each finds now.
    The world is a pure function of seed and clock (every case resets it), so the
    lookup runs once per (seed, clock, emails): again after the advance case moved
    the clock, not for every case."""
    key = (env.seed, env.control.clock()["now"], tuple(env.emails))
    if key in _LOOPS_TRUTH:
        return _LOOPS_TRUTH[key]
    ref = Warehouse(env.root / "loops_ref.duckdb")
    env.mp.setenv("DLT_DATA_DIR", str(env.root / "dlt_ref"))
    try:
        (source,) = ref.run("loops").sources
        assert source.status == "loaded", source.message
        _LOOPS_TRUTH[key] = set(ref.query("select email, id, subscribed, created_at, first_name from loops.contacts"))
        return _LOOPS_TRUTH[key]
    finally:
        env.mp.setenv("DLT_DATA_DIR", str(env.root / "dlt"))


def assert_equals_truth(env: Env, source: str, loops_truth: set[tuple], listenloop_runs: int) -> int:
    """The checks of tests/sources/test_<source>.py; returns the rows compared."""
    with env.warehouse.reading():
        return _assert_equals_truth(env, source, loops_truth, listenloop_runs)


def _assert_equals_truth(env: Env, source: str, loops_truth: set[tuple], listenloop_runs: int) -> int:
    wh, sb = env.warehouse, env.control
    if source == "listenloop":
        assert test_listenloop.campaign_totals(wh) == test_listenloop.expected_totals(sb)
        count = wh.scalar("select count(*) from listenloop.campaigns")
        assert wh.scalar("select count(distinct id) from listenloop.campaigns") == count
        # One snapshot per campaign per loaded run, none twice.
        snapshots = wh.query("select count(*), count(distinct (campaign_id, snapshot_at)) from listenloop.campaign_snapshots")[0]
        assert snapshots == (count * listenloop_runs,) * 2
        return count + snapshots[0]
    if source == "marin_social":
        test_marin_social.assert_equals_truth(wh, sb, truth=sb.truth("marin_social")["marin_social"])
        return sum(wh.scalar(f"select count(*) from marin_social.{t}") for t in (*test_marin_social.DIMENSIONS, *test_marin_social.STATS))
    if source == "inboxfirst":
        test_inboxfirst.assert_equals_truth(sb, wh)
        return wh.scalar("select count(*) from inboxfirst.campaigns") + wh.scalar("select count(*) from inboxfirst.link_stats")
    if source == "retreaver":
        test_retreaver.assert_equals_truth(wh, sb)
        return sum(wh.scalar(f"select count(*) from retreaver.{t}") for t in ("calls", "report_daily", "report_campaign_daily"))
    if source == "loops":
        rows = wh.query("select email, id, subscribed, created_at, first_name from loops.contacts")
        assert len(rows) == len(set(rows)) and set(rows) == loops_truth
        return len(rows)
    raise AssertionError(source)


ENDPOINT = re.compile(r"\b(GET|POST) /\S+")
RESULTS: list[dict[str, Any]] = []  # one line per (case, seed, source), printed at the end


@pytest.fixture(scope="module", autouse=True)
def matrix_report():
    yield
    if RESULTS:
        outcomes: dict[str, int] = {}
        for r in RESULTS:
            outcomes[r["outcome"]] = outcomes.get(r["outcome"], 0) + 1
        print(f"\nfault matrix: {len({(r['case'], r['seed']) for r in RESULTS})} cases, {len(RESULTS)} source runs, "
              f"{sum(r['faults'] for r in RESULTS)} faults injected, {sum(r['rows'] for r in RESULTS)} rows compared, outcomes {outcomes}")
        for r in RESULTS:
            print(f"  {r['case']:<19} seed {r['seed']:<3} {r['source']:<13} {r['outcome']:<18} faults {r['faults']:<4} {r['detail'][:150]}")


def seeds(request) -> tuple[int, ...]:
    return LONG_SEEDS if request.config.getoption("--long") else (TEST_SEED,)


@pytest.mark.parametrize("case", CASES)
def test_each_source_completes_or_fails_loudly_and_a_clean_run_repairs_it(case, sandbox_server, tmp_path, monkeypatch, capsys, request):
    long = bool(request.config.getoption("--long"))
    for seed in seeds(request):
        root = tmp_path / f"seed{seed}"
        with monkeypatch.context() as mp:
            env = Env(SandboxControl(sandbox_server.base_url), seed, root, mp)
            if case == "slow":
                mp.setenv("RUNTIME__REQUEST_TIMEOUT", "1.5")  # the slow answers (4 s) time out
            for rule in rules(case, long):
                env.control.add_fault(**rule)
            code, summary, stderr = env.run(capsys)
            hits = {f["api"]: f["hits"] for f in env.control.faults()}
            env.control.clear_faults()
            mp.delenv("RUNTIME__REQUEST_TIMEOUT", raising=False)
            loops_truth = loops_reference(env, capsys)
            by_source = {r["source"]: r for r in summary["runs"]}
            recorded = env.recorded(summary["run_id"])
            failed = [s for s in VENDORS if by_source[s]["status"] == "failed"]
            assert code == (0 if not failed else 3 if len(failed) == len(VENDORS) else 1), stderr
            outcomes = {}
            for source in VENDORS:
                row = by_source[source]
                assert recorded[source][:2] == (row["status"], row["error"]), source
                if row["status"] == "failed":
                    # Loud: the endpoint in the error, on stderr and in ops.runs.
                    assert ENDPOINT.search(row["error"] or ""), f"{case}: {source} failed without naming the endpoint: {row['error']}"
                    assert f"marketing-etl: {source} failed: {row['error']}" in stderr
                    outcomes[source] = ("failed loudly", row["error"], 0)
                elif row["skipped_entities"]:
                    assert row["status"] == "loaded" and recorded[source][2] == row["skipped_entities"], source
                    assert all(ENDPOINT.search(s["endpoint"]) for s in row["skipped"]), row["skipped"]
                    assert f"marketing-etl: {source}: {row['skipped_entities']} entities skipped" in stderr
                    outcomes[source] = ("skipped, counted", f"{row['skipped_entities']} x {row['skipped'][0]['endpoint']} {row['skipped'][0]['status']}", 0)
                else:
                    assert row["status"] == "loaded", row
                    if case == "advance":
                        # The world moved mid-run: the run read an earlier (consistent) state;
                        # the clean run below must catch up with nothing duplicated.
                        outcomes[source] = ("loaded (moving)", "", 0)
                    else:
                        rows = assert_equals_truth(env, source, loops_truth, listenloop_runs=1)
                        outcomes[source] = ("loaded = truth", "", rows)

            # The clean run repairs the others: every source equal to the truth. (Sources
            # already equal to it are left alone: a second run's merge without duplicates
            # is each source's own test, and CI time is better spent on more faults.)
            repair = tuple(s for s in VENDORS if outcomes[s][0] != "loaded = truth")
            if repair:
                code, summary, stderr = env.run(capsys, repair)
                assert code == 0, stderr
                clean = {r["source"]: r for r in summary["runs"]}
                assert all(clean[s]["status"] == "loaded" and not clean[s]["skipped_entities"] for s in repair), stderr
            listenloop_runs = (by_source["listenloop"]["status"] == "loaded") + ("listenloop" in repair)
            for source in VENDORS:
                rows = assert_equals_truth(env, source, loops_truth, listenloop_runs)
                outcome, detail, first_rows = outcomes[source]
                RESULTS.append({"case": case, "seed": seed, "source": source, "outcome": outcome, "detail": detail,
                                "faults": hits.get(source, 0), "rows": first_rows + (rows if source in repair else 0)})
