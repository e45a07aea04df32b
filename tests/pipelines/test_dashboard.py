"""The HTML dashboard: built by the demo from the serving file, self-contained,
drawn in a real browser (headless Chromium) with the numbers the marts hold, and
readable when the serving file is missing, partial or has nothing to chart."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from datetime import timedelta
from decimal import Decimal
from html import unescape
from pathlib import Path

import duckdb
import pytest

from pipelines.cli import main
from pipelines.dashboard import build_dashboard, dashboard_path
from pipelines.publish import serving_path

DEMO_SCALE = "0.1"  # every source and the transforms run whole, in ~40 s
CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on PATH (Debian: apt-get install chromium; .ci/run installs it)"
)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """One `marketing-etl demo` (its own sandbox), off a terminal, for the whole module."""
    root = tmp_path_factory.mktemp("dashboard")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "DLT_DATA_DIR"))}
    warehouse = root / "demo.duckdb"
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "demo", "--scale", DEMO_SCALE, "--warehouse", str(warehouse)],
        capture_output=True, text=True, timeout=600, env=env, cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return warehouse, result


def chromium(url: str, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1280,2400",
         "--enable-logging=stderr", "--v=0", "--virtual-time-budget=15000", *flags, url],
        capture_output=True, text=True, timeout=120,
    )


def console_messages(stderr: str) -> list[str]:
    # Chromium logs every console message (console.error, uncaught exceptions) as a CONSOLE line.
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def kpi_text(dom: str, key: str) -> str:
    match = re.search(rf'data-kpi="{key}"[^>]*>([^<]*)<', dom)
    assert match, f"no KPI {key} on the page"
    return unescape(match.group(1))


def marks(dom: str, chart_id: str) -> int:
    """Bars Plotly drew inside one chart's div (path elements with a shape)."""
    start = dom.index(f'id="{chart_id}"')
    end = dom.find('id="chart-', start + 1)
    section = dom[start: end if end > 0 else len(dom)]
    return len(re.findall(r'class="point"><path[^>]*\sd="M[^"]+', section))


def test_the_demo_ends_by_pointing_at_a_self_contained_dashboard(demo):
    warehouse, result = demo
    page = dashboard_path(warehouse)
    last = [line for line in result.stdout.splitlines() if line.strip()][-2:]
    assert str(page) in last[0] and last[1].strip() == f"file://{page}", last
    text = page.read_text()
    assert page.parent == serving_path(warehouse).parent
    assert page.stat().st_size < 8_000_000
    # Opens offline: no script, style or font fetched from anywhere.
    assert not re.search(r'<(script|link|img)[^>]+(src|href)="(https?:)?//', text)
    assert "Plotly.newPlot" in text and "reporting currency <b id=\"currency\">USD</b>" in text


def test_the_serving_file_carries_this_runs_history_and_freshness(demo):
    warehouse, _ = demo
    with duckdb.connect(str(serving_path(warehouse)), read_only=True) as con:
        runs = dict(con.execute("select source, status from ops.runs").fetchall())
        fresh = {r[0] for r in con.execute("select source from ops.freshness").fetchall()}
    assert runs == {**{s: "loaded" for s in ("listenloop", "marin_social", "inboxfirst", "retreaver", "loops", "fx")}, "transforms": "built"}
    assert {"listenloop", "marin_social", "inboxfirst", "retreaver"} <= fresh


@needs_chromium
def test_the_dashboard_draws_in_chromium_with_the_numbers_of_the_marts(demo, tmp_path):
    warehouse, _ = demo
    page = dashboard_path(warehouse)
    shown = chromium(page.as_uri(), "--dump-dom")
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert console_messages(shown.stderr) == []
    dom = shown.stdout
    for chart in ("chart-spend", "chart-conversions"):
        assert marks(dom, chart) > 20, f"{chart} drew no bars"
    assert len(re.findall(r'class="[^"]*\bjs-plotly-plot\b', dom)) == 2  # both charts initialised

    # The same figures computed here, from the definitions in docs/dashboard.md.
    with duckdb.connect(str(serving_path(warehouse)), read_only=True) as con:
        end = con.execute("select max(date_day) from marts.marketing_daily").fetchone()[0]
        start, prev = end - timedelta(days=29), (end - timedelta(days=59), end - timedelta(days=30))
        period = "from marts.marketing_daily where date_day between ? and ?"
        spend, conversions, calls, reported = con.execute(
            f"select sum(spend), sum(conversions), sum(calls), sum(platform_conversions) {period}", [start, end]
        ).fetchone()
        known_conversions = con.execute(f"select sum(conversions) {period} and spend is not null", [start, end]).fetchone()[0]
        value, value_spend = con.execute(
            f"select sum(conversions_value), sum(spend) {period} and spend is not null and conversions_value is not null", [start, end]
        ).fetchone()
        previous_spend = con.execute(f"select sum(spend) {period}", list(prev)).fetchone()[0]
    assert kpi_text(dom, "spend") == f"{spend:,.2f} USD"
    assert kpi_text(dom, "conversions") == f"{conversions:,}"
    assert kpi_text(dom, "calls") == f"{calls:,}"
    assert kpi_text(dom, "platform_conversions") == f"{reported:,}"
    assert conversions == calls + reported
    assert kpi_text(dom, "cpa") == f"{(spend / known_conversions).quantize(Decimal('0.01')):,} USD"
    assert kpi_text(dom, "roas") == f"{float(value / value_spend):,.2f}×"
    if previous_spend:
        change = float((spend - previous_spend) / previous_spend * 100)
        assert f"{change:+.1f}% vs previous 30 days" in dom
    # Email spend is unknown in the demo (no cost configured): flagged, never 0.
    assert "excludes" in dom and "inboxfirst" in dom
    assert "≈ estimated" in dom  # ListenLoop spend is an estimate

    shot = tmp_path / "dashboard.png"
    taken = chromium(page.as_uri(), f"--screenshot={shot}")
    assert taken.returncode == 0 and shot.stat().st_size > 50_000, taken.stderr[-2000:]


# ---------------------------------------------------------------- empty and partial
MARKETING_DAILY = """
create table marts.marketing_daily (
    date_day date, platform varchar, campaign_id varchar, campaign_name varchar, channel varchar, date_day_timezone varchar,
    spend decimal(18,4), impressions bigint, clicks bigint, platform_conversions bigint, platform_conversions_value decimal(18,4),
    calls bigint, call_revenue decimal(18,4), conversions bigint, conversions_value decimal(18,4),
    ctr double, cpc decimal(18,4), cpa decimal(18,4), roas double, is_spend_estimated boolean, is_estimated boolean)
"""


def make_serving(path: Path, rows: list[tuple], runs: list[tuple]) -> None:
    """A serving file with one platform's marketing_daily rows and a run history."""
    with duckdb.connect(str(path)) as con:
        for schema in ("marts", "seeds", "ops"):
            con.execute(f"create schema {schema}")
        con.execute("create table seeds.settings as select 'reporting_currency' as key, 'EUR' as value")
        con.execute(MARKETING_DAILY)
        con.executemany(
            "insert into marts.marketing_daily (date_day, platform, campaign_id, campaign_name, spend, clicks, platform_conversions, "
            "calls, conversions, conversions_value, is_spend_estimated, is_estimated) values (?, ?, ?, ?, ?, ?, 0, 0, 0, null, false, false)",
            rows,
        )
        con.execute(
            "create table ops.runs (source varchar, command varchar, status varchar, started_at timestamptz, finished_at timestamptz, "
            "rows_total bigint, requests bigint, throttled_429 bigint, error varchar)"
        )
        if runs:
            con.executemany("insert into ops.runs values (?, 'run', ?, ?, ?, 0, 3, 0, ?)", runs)


def test_no_serving_file_gives_a_page_that_says_so_and_exit_3(tmp_path, capsys):
    warehouse = tmp_path / "marketing.duckdb"
    code = main(["dashboard", "--warehouse", str(warehouse)])
    assert code == 3
    text = dashboard_path(warehouse).read_text()
    assert "No serving file at" in text and "marketing-etl run" in text
    assert "Plotly.newPlot" not in text and "Traceback" not in text
    assert "No serving file" in capsys.readouterr().err


def test_one_platform_no_conversions_and_a_failed_run_are_named_not_charted_as_zero(tmp_path):
    warehouse = tmp_path / "marketing.duckdb"
    days = [f"2026-11-{d:02d}" for d in range(1, 11)]
    make_serving(
        serving_path(warehouse),
        [(d, "marin_social", "c1", "Spring Kayaks", Decimal("100.50"), 10) for d in days]
        + [(d, "marin_social", "c2", "No cost known", None, 3) for d in days],
        [("marin_social", "loaded", "2026-11-10 06:00:00+00", "2026-11-10 06:01:00+00", None),
         ("retreaver", "failed", "2026-11-10 06:00:00+00", "2026-11-10 06:02:00+00", "SourceAuthError: 401 on GET /retreaver/api/v2/calls.json")],
    )
    page = build_dashboard(warehouse, days=7)
    text = page.path.read_text()
    assert "The last run of retreaver failed" in text and "SourceAuthError: 401" in text
    assert "No rows in this period for: listenloop, inboxfirst, retreaver" in text
    assert "No conversions in this period yet" in text
    assert 'data-kpi="spend" data-value="703.5000">703.50 EUR<' in text  # 7 days × 100.50; unknown rows left out
    assert 'data-kpi="cpa" data-value="">—<' in text and 'data-kpi="roas" data-value="">—<' in text
    assert "excludes 7 rows of unknown spend" in text
    assert 'id="chart-spend"' in text and 'id="chart-conversions"' not in text
    assert "No conversions in 2026-11-04 – 2026-11-10 yet: nothing to chart." in text
    if CHROMIUM:
        shown = chromium(page.path.as_uri(), "--dump-dom")
        assert console_messages(shown.stderr) == []
        assert marks(shown.stdout, "chart-spend") == 7


def test_spend_unknown_everywhere_leaves_cpa_and_the_chart_unknown_not_zero(tmp_path):
    warehouse = tmp_path / "marketing.duckdb"
    make_serving(serving_path(warehouse), [("2026-11-01", "inboxfirst", "s1", "Newsletter", None, 40)], [])
    text = build_dashboard(warehouse).path.read_text()
    assert 'data-kpi="spend" data-value="">—<' in text and 'data-kpi="cpa" data-value="">—<' in text
    assert "No known spend in" in text and "Plotly.newPlot" not in text
    assert "inboxfirst: spend unknown on 1 rows (no cost configured" in text
