"""``marketing-etl dashboard``: one self-contained HTML page from the serving file.

The page is what a marketer opens first: KPI tiles with the change against the
previous period, spend and conversions per platform per day, the top campaigns and
the data's health. It reads only the serving file (pipelines/publish.py), never the
live warehouse: the run history and the freshness it shows were copied there at
publish time, under the writer's lock, so building the page never waits for or
blocks a run. It embeds Plotly's JavaScript (no CDN): the file opens offline and
can be mailed. Why Plotly and what it costs: docs/dashboard.md.

Unknown stays unknown: a NULL spend (email cost not configured, no FX rate) is
shown as "—" and flagged, never summed as 0; CPA and ROAS are NULL when the spend
they divide by is unknown or zero.
"""

from __future__ import annotations

import html
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from pipelines.publish import serving_path

DEFAULT_DAYS = 30
TOP_CAMPAIGNS = 25
PLATFORMS = ("marin_social", "listenloop", "inboxfirst", "retreaver")
# Plotly's default palette, fixed per platform so both charts agree.
COLORS = {"marin_social": "#636efa", "listenloop": "#ef553b", "inboxfirst": "#00cc96", "retreaver": "#ab63fa"}
# Which platform each source feeds (Loops and FX feed none directly).
SOURCE_PLATFORM = {"marin_social": "marin_social", "listenloop": "listenloop", "inboxfirst": "inboxfirst", "retreaver": "retreaver"}
SOURCES = ("listenloop", "marin_social", "inboxfirst", "retreaver", "loops", "fx")
NONE = "—"

# CPA and ROAS over a group of marts.marketing_daily rows, for the KPI tiles and the
# campaigns table alike.
RATIOS_SQL = """
    case when sum(spend) > 0 and sum(conversions) filter (where spend is not null) > 0
         then cast(sum(spend) / sum(conversions) filter (where spend is not null) as decimal(18, 4)) end as cpa,
    case when sum(spend) filter (where conversions_value is not null) > 0
         then sum(conversions_value) filter (where spend is not null)
              / sum(spend) filter (where conversions_value is not null) end as roas,
"""

# The KPI figures for one period [start, end] of marts.marketing_daily. Sums skip
# unknown (NULL) spend, so CPA and ROAS divide only over rows whose spend (and, for
# ROAS, value) is known; the page says how many rows that leaves out.
KPI_SQL = f"""
select
    sum(spend)                                                   as spend,
    count(*) filter (where spend is null)                        as unknown_spend_rows,
    sum(spend) filter (where is_spend_estimated)                 as estimated_spend,
    sum(conversions)                                             as conversions,
    sum(calls)                                                   as calls,
    sum(platform_conversions)                                    as platform_conversions,
    {RATIOS_SQL.strip()}
    count(*)                                                     as row_count
from marts.marketing_daily
where date_day between ? and ?
"""


@dataclass
class Dashboard:
    path: Path
    bytes: int
    seconds: float
    notices: list[str] = field(default_factory=list)


def dashboard_path(warehouse: str | Path) -> Path:
    """``<warehouse stem>.dashboard.html`` beside the serving file."""
    serving = serving_path(warehouse)
    stem = serving.name.split(".serving", 1)[0]
    return serving.with_name(f"{stem}.dashboard.html")


# ------------------------------------------------------------------ formatting
def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def money(value: Any, currency: str | None) -> str:
    if value is None:
        return NONE
    return f"{Decimal(value):,.2f} {currency or ''}".rstrip()


def count(value: Any) -> str:
    return NONE if value is None else f"{int(value):,}"


def ratio(value: Any) -> str:
    return NONE if value is None else f"{float(value):,.2f}×"


def _num(value: Any) -> str:
    """The value a table cell sorts by; empty = unknown (sorted last)."""
    return "" if value is None else str(value)


def _change(current: Any, previous: Any) -> float | None:
    if current is None or previous is None or previous == 0:
        return None
    return float((Decimal(current) - Decimal(previous)) / abs(Decimal(previous)) * 100)


# ------------------------------------------------------------------ reading
def _has_table(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(
        con.execute("select count(*) from duckdb_tables() where schema_name = ? and table_name = ?", [schema, table]).fetchone()[0]
    )


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[dict[str, Any]]:
    cursor = con.execute(sql, params or [])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


@dataclass
class Data:
    serving: Path
    days: int
    currency: str | None = None
    start: date | None = None
    end: date | None = None
    kpi: dict[str, Any] = field(default_factory=dict)
    kpi_previous: dict[str, Any] = field(default_factory=dict)
    daily: list[dict[str, Any]] = field(default_factory=list)
    unknown_spend: dict[str, int] = field(default_factory=dict)
    campaigns: list[dict[str, Any]] = field(default_factory=list)
    attribution: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)
    freshness: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    reconciliation: list[dict[str, Any]] = field(default_factory=list)
    reconciliation_counts: dict[str, int] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)
    has_marts: bool = False


def read(serving: Path, days: int) -> Data:
    data = Data(serving, days)
    if not serving.exists():
        data.notices.append(
            f"No serving file at {serving}: nothing has been published yet. It is written after a run whose "
            "transforms build and pass their data tests (marketing-etl run or marketing-etl demo); the transforms "
            "need all four ad and call sources (ListenLoop, Marin Social, InboxFirst, Retreaver) loaded at least once."
        )
        return data
    with duckdb.connect(str(serving), read_only=True) as con:
        if _has_table(con, "seeds", "settings"):
            data.currency = con.execute("select max(value) from seeds.settings where key = 'reporting_currency'").fetchone()[0]
        if data.currency is None:
            data.notices.append("The reporting currency is not in the serving file (seeds.settings): amounts are shown without it.")
        _read_health(con, data)
        if not _has_table(con, "marts", "marketing_daily"):
            data.notices.append("The serving file has no marts.marketing_daily: the marts were never built.")
            return data
        data.has_marts = True
        first, last = con.execute("select min(date_day), max(date_day) from marts.marketing_daily").fetchone()
        if last is None:
            data.notices.append("marts.marketing_daily has no rows yet: no spend or conversion was loaded.")
            return data
        # The period ends on the newest day in the marts, not today: data lands a
        # day or more late, and an empty last day would read as a collapse.
        data.end = last
        data.start = last - timedelta(days=days - 1)
        previous = (data.start - timedelta(days=days), data.start - timedelta(days=1))
        data.kpi = _rows(con, KPI_SQL, [data.start, data.end])[0]
        data.kpi_previous = _rows(con, KPI_SQL, list(previous))[0]
        if first > previous[1]:
            data.notices.append(f"No data before {first}: the change against the previous {days} days cannot be computed.")
        elif first > previous[0]:
            data.notices.append(
                f"The previous {days} days ({previous[0]} – {previous[1]}) are only partly loaded (data from {first}): "
                "read the changes against them with care."
            )
        data.daily = _rows(
            con,
            """
            select date_day, platform,
                   sum(spend) as spend, count(*) filter (where spend is null) as unknown_spend_rows,
                   bool_or(is_spend_estimated) as spend_estimated, bool_or(is_estimated) as spread,
                   sum(conversions) as conversions, sum(calls) as calls, sum(platform_conversions) as platform_conversions
            from marts.marketing_daily where date_day between ? and ?
            group by all order by date_day, platform
            """,
            [data.start, data.end],
        )
        data.unknown_spend = dict(
            con.execute(
                "select platform, count(*) from marts.marketing_daily where date_day between ? and ? and spend is null group by 1 order by 1",
                [data.start, data.end],
            ).fetchall()
        )
        data.campaigns = _rows(
            con,
            f"""
            select platform, campaign_id, max(campaign_name) as campaign_name,
                   sum(spend) as spend, count(*) filter (where spend is null) as unknown_spend_rows,
                   sum(clicks) as clicks, sum(conversions) as conversions, sum(calls) as calls,
                   sum(platform_conversions) as platform_conversions,
                   {RATIOS_SQL.strip()}
                   bool_or(is_spend_estimated) as spend_estimated, bool_or(is_estimated) as spread
            from marts.marketing_daily where date_day between ? and ?
            group by platform, campaign_id
            order by spend desc nulls last, conversions desc, platform, campaign_id
            limit {TOP_CAMPAIGNS}
            """,
            [data.start, data.end],
        )
        if _has_table(con, "marts", "call_conversions"):
            # A call's method comes from call_conversions: conversions_daily folds
            # calls matched in different ways into one "mixed" row.
            for platform, campaign, method, n in con.execute(
                """
                select coalesce(attributed_platform, 'retreaver'), coalesce(attributed_campaign_id, retreaver_campaign_id),
                       attribution_method, count(*)
                from marts.call_conversions where date_day between ? and ? group by all
                """,
                [data.start, data.end],
            ).fetchall():
                data.attribution.setdefault((platform, campaign), {})[method] = n
        _notice_gaps(data)
    return data


def _read_health(con: duckdb.DuckDBPyConnection, data: Data) -> None:
    if _has_table(con, "ops", "freshness"):
        data.freshness = _rows(con, "select * from ops.freshness order by source, table_name")
    if _has_table(con, "ops", "runs"):
        data.runs = _rows(
            con,
            """
            select source, command, status, started_at, finished_at, rows_total, requests, throttled_429, error
            from ops.runs qualify row_number() over (partition by source order by finished_at desc) = 1
            order by source
            """,
        )
        for run in data.runs:
            if run["status"] in ("failed", "interrupted", "tests_failed"):
                data.notices.append(
                    f"The last run of {run['source']} {run['status']} ({run['command']}, finished {_ts(run['finished_at'])})"
                    f"{': ' + str(run['error']) if run['error'] else ''}. The marts keep what it loaded last time."
                )
    else:
        data.notices.append("No run history in the serving file (ops.runs): it was published before runs were recorded there.")
    if _has_table(con, "marts", "reconciliation"):
        data.reconciliation_counts = dict(con.execute("select status, count(*) from marts.reconciliation group by 1").fetchall())
        data.reconciliation = _rows(
            con,
            """
            select status, check_name, platform, date_day, expected, actual, difference, tolerance
            from marts.reconciliation where status <> 'ok'
            order by status, check_name, platform, date_day limit 50
            """,
        )


def _notice_gaps(data: Data) -> None:
    seen = {row["platform"] for row in data.daily}
    missing = [p for p in PLATFORMS if p not in seen]
    if missing:
        data.notices.append(f"No rows in this period for: {', '.join(missing)}.")
    for platform, rows in data.unknown_spend.items():
        why = "no cost configured in transforms/seeds/platform_costs.csv" if platform == "inboxfirst" else "no FX rate for its currency"
        data.notices.append(
            f"{platform}: spend unknown on {rows} rows ({why}); totals, CPA and ROAS leave those rows out."
        )
    if not data.kpi.get("conversions"):
        data.notices.append("No conversions in this period yet: CPA and ROAS are unknown.")


def _ts(value: Any) -> str:
    if value is None:
        return NONE
    if isinstance(value, datetime):
        value = value if value.tzinfo else value.replace(tzinfo=UTC)
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return str(value)


# ------------------------------------------------------------------ rendering
def _figures(data: Data) -> tuple[str, str]:
    """Two Plotly charts (HTML fragments without plotly.js), or a message each."""
    import plotly.graph_objects as go

    cur = data.currency or ""
    days = [data.start + timedelta(days=i) for i in range((data.end - data.start).days + 1)] if data.start else []
    by_platform: dict[str, dict[date, dict[str, Any]]] = {}
    for row in data.daily:
        by_platform.setdefault(row["platform"], {})[row["date_day"]] = row
    config = {"displaylogo": False, "responsive": True}
    layout = dict(
        barmode="stack", height=380, margin=dict(l=60, r=20, t=50, b=40), hovermode="closest",
        legend=dict(orientation="h", yanchor="top", y=-0.12, title=dict(text="platform (click to hide, double-click to isolate): ")),
        template="plotly_white",
    )

    spend = go.Figure()
    for platform in (p for p in PLATFORMS if p in by_platform):
        rows = [by_platform[platform].get(d) for d in days]
        known = [r for r in rows if r and r["spend"] is not None]
        if not known:
            continue  # all unknown: named in the notices, never drawn as 0
        notes = []
        for r in rows:
            note = []
            if r and r["spend_estimated"]:
                note.append("estimated spend")
            if r and r["spread"]:
                note.append("spread from history")
            if r and r["unknown_spend_rows"]:
                note.append(f"{r['unknown_spend_rows']} rows unknown")
            notes.append(("<br>" + ", ".join(note)) if note else "")
        spend.add_bar(
            x=days, y=[float(r["spend"]) if r and r["spend"] is not None else None for r in rows],
            name=platform + (" (estimated)" if any(r and r["spend_estimated"] for r in rows) else ""),
            marker=dict(color=COLORS[platform], pattern=dict(shape=["/" if r and (r["spend_estimated"] or r["spread"]) else "" for r in rows])),
            customdata=notes,
            hovertemplate=f"%{{x|%Y-%m-%d}}<br>{platform}: %{{y:,.2f}} {cur}%{{customdata}}<extra></extra>",
        )
    spend.update_layout(title=f"Spend per platform per day ({cur}; hatched = estimated)", yaxis_title=f"spend ({cur})", **layout)

    conv = go.Figure()
    for platform in (p for p in PLATFORMS if p in by_platform):
        rows = [by_platform[platform].get(d) for d in days]
        if not any(r and r["conversions"] for r in rows):
            continue
        conv.add_bar(
            x=days, y=[int(r["conversions"]) if r else 0 for r in rows], name=platform,
            marker=dict(color=COLORS[platform]),
            customdata=[[int(r["calls"]) if r else 0, int(r["platform_conversions"]) if r else 0] for r in rows],
            hovertemplate=f"%{{x|%Y-%m-%d}}<br>{platform}: %{{y:,}} conversions<br>calls %{{customdata[0]:,}}, platform-reported %{{customdata[1]:,}}<extra></extra>",
        )
    conv.update_layout(title="Conversions per platform per day (calls + platform-reported)", yaxis_title="conversions", **layout)

    def fragment(fig: Any, div_id: str, empty: str) -> str:
        if not fig.data:
            return f'<div class="missing">{_e(empty)}</div>'
        return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id, config=config)

    return (
        fragment(spend, "chart-spend", f"No known spend in {_period(data)}: nothing to chart."),
        fragment(conv, "chart-conversions", f"No conversions in {_period(data)} yet: nothing to chart."),
    )


def _period(data: Data) -> str:
    return f"{data.start} – {data.end}" if data.start else "this period"


def _kpi_tile(key: str, label: str, value: str, raw: Any, current: Any, previous: Any, fmt: Any, days: int, extra: str = "",
              good: str = "up") -> str:
    """``good``: the direction coloured green ("up", "down"; "" leaves the change uncoloured, as for spend)."""
    change = _change(current, previous)
    if change is None:
        delta = f'<div class="delta">{NONE} vs previous {days} days ({_e(fmt(previous))})</div>'
    else:
        better = {"up": change, "down": -change}.get(good, 0.0)
        cls = "up" if better > 0 else "down" if better < 0 else ""
        delta = f'<div class="delta {cls}">{change:+.1f}% vs previous {days} days ({_e(fmt(previous))})</div>'
    return (
        f'<div class="kpi" data-kpi-tile="{key}"><div class="label">{_e(label)}</div>'
        f'<div class="value" data-kpi="{key}" data-value="{_e(_num(raw))}">{_e(value)}</div>{delta}{extra}</div>'
    )


def _kpis(data: Data) -> str:
    if not data.kpi:
        return '<div class="missing">No KPIs: nothing in marts.marketing_daily to compute them from.</div>'
    k, p, cur, days = data.kpi, data.kpi_previous, data.currency, data.days
    m = lambda v: money(v, cur)  # noqa: E731
    flags = []
    if k["estimated_spend"]:
        share = float(k["estimated_spend"] / k["spend"] * 100) if k["spend"] else None
        platforms = sorted({r["platform"] for r in data.daily if r["spend_estimated"]})
        flags.append(
            f'<div class="flag est" title="spend these platforms do not report: estimated from bids (ListenLoop) or configured costs (InboxFirst)">'
            f'≈ estimated: {_e(m(k["estimated_spend"]))}{f" ({share:.0f}%)" if share is not None else ""} from {_e(", ".join(platforms))}</div>'
        )
    if k["unknown_spend_rows"]:
        flags.append(f'<div class="flag unknown">excludes {k["unknown_spend_rows"]:,} rows of unknown spend ({_e(", ".join(data.unknown_spend))})</div>')
    split = (
        f'<div class="split">calls <span data-kpi="calls" data-value="{_e(_num(k["calls"]))}">{count(k["calls"])}</span>'
        f' · platform-reported <span data-kpi="platform_conversions" data-value="{_e(_num(k["platform_conversions"]))}">{count(k["platform_conversions"])}</span></div>'
    )
    partial = '<div class="flag unknown">over rows with known spend</div>' if k["unknown_spend_rows"] else ""
    return "".join(
        [
            _kpi_tile("spend", f"Spend ({cur or 'currency unknown'})", m(k["spend"]), k["spend"], k["spend"], p.get("spend"), m, days, "".join(flags), good=""),
            _kpi_tile("conversions", "Conversions", count(k["conversions"]), k["conversions"], k["conversions"], p.get("conversions"), count, days, split),
            _kpi_tile("cpa", f"CPA ({cur or 'currency unknown'} per conversion)", m(k["cpa"]), k["cpa"], k["cpa"], p.get("cpa"), m, days, partial, good="down"),
            _kpi_tile("roas", "ROAS (conversion value ÷ spend)", ratio(k["roas"]), k["roas"], k["roas"], p.get("roas"), ratio, days, partial),
        ]
    )


def _campaigns(data: Data) -> str:
    if not data.campaigns:
        return '<div class="missing">No campaigns with spend or conversions in this period.</div>'
    cur = data.currency or ""
    head = ["platform", "campaign", f"spend ({cur})", "clicks", "conversions", f"CPA ({cur})", "ROAS", "attribution of conversions"]
    out = ['<table class="sortable" id="campaigns"><thead><tr>']
    out += [f'<th title="click to sort">{_e(h)}</th>' for h in head]
    out.append("</tr></thead><tbody>")
    for c in data.campaigns:
        methods = dict(data.attribution.get((c["platform"], c["campaign_id"]), {}))
        if c["platform_conversions"]:
            methods["platform_reported"] = int(c["platform_conversions"])
        total = sum(methods.values())
        shares = " · ".join(f"{m} {_share(n, total)}" for m, n in sorted(methods.items(), key=lambda kv: -kv[1])) if total else NONE
        spend = money(c["spend"], None)
        if c["spend"] is not None and c["spend_estimated"]:
            spend = "≈ " + spend
        if c["unknown_spend_rows"] and c["spend"] is not None:
            spend += " +?"
        name = c["campaign_name"] or NONE
        cells = [
            (c["platform"], _e(c["platform"])),
            (name, f'{_e(name)} <span class="id">{_e(c["campaign_id"])}</span>'),
            (_num(c["spend"]), _e(spend)),
            (_num(c["clicks"]), count(c["clicks"])),
            (_num(c["conversions"]), count(c["conversions"])),
            (_num(c["cpa"]), _e(money(c["cpa"], None))),
            (_num(c["roas"]), _e(ratio(c["roas"]))),
            (str(total), _e(shares)),
        ]
        out.append("<tr>" + "".join(f'<td data-sort="{_e(s)}">{v}</td>' for s, v in cells) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _share(n: int, total: int) -> str:
    return "<1%" if 0 < n / total < 0.005 else f"{n / total:.0%}"


def _health(data: Data) -> str:
    runs = {r["source"]: r for r in data.runs}
    fresh: dict[str, list[dict[str, Any]]] = {}
    for row in data.freshness:
        fresh.setdefault(row["source"], []).append(row)
    names = [s for s in SOURCES if s in runs or s in fresh]
    parts = []
    if names:
        checked = data.freshness[0]["checked_at"] if data.freshness else None
        parts.append(
            f'<table id="health"><thead><tr><th>source</th><th>freshness{" (checked " + _e(checked) + ")" if checked else ""}</th>'
            "<th>newest data</th><th>last run</th><th>rows · requests · 429s</th><th>last success</th></tr></thead><tbody>"
        )
        for name in names:
            rows, run = fresh.get(name, []), runs.get(name)
            if rows:
                stale = rows[0]["source_stale"]
                state = f'<span class="{"bad" if stale else "ok"}">{"STALE" if stale else "fresh"}</span>'
                if rows[0]["reasons"]:
                    state += f' <span class="note">{_e(rows[0]["reasons"])}</span>'
                newest = "<br>".join(
                    f'{_e(r["table_name"])}: {_e(r["newest_cursor"] or NONE)}' for r in rows if r["cursor_column"]
                ) or NONE
                success = rows[0]["last_success_at"] or NONE
            else:
                state, newest, success = '<span class="note">not checked (freshness not published)</span>', NONE, NONE
            if run:
                cls = "ok" if run["status"] in ("loaded", "built") else "bad" if run["status"] in ("failed", "interrupted") else "note"
                last = f'<span class="{cls}">{_e(run["status"])}</span> {_ts(run["finished_at"])} ({_e(run["command"])})'
                if run["error"]:
                    last += f'<br><span class="note">{_e(run["error"])}</span>'
                figures = f'{count(run["rows_total"])} · {count(run["requests"])} · {count(run["throttled_429"])}'
            else:
                last, figures = NONE, NONE
            parts.append(f"<tr><td>{_e(name)}</td><td>{state}</td><td>{newest}</td><td>{last}</td><td>{figures}</td><td>{_e(success)}</td></tr>")
        parts.append("</tbody></table>")
        if "transforms" in runs:
            t = runs["transforms"]
            parts.append(f'<p>Last build of the marts: <b>{_e(t["status"])}</b> {_ts(t["finished_at"])} ({_e(t["command"])}).</p>')
    else:
        parts.append('<div class="missing">No run history or freshness in the serving file.</div>')
    if data.reconciliation_counts:
        counts = ", ".join(f"{n:,} {s}" for s, n in sorted(data.reconciliation_counts.items()))
        failed = data.reconciliation_counts.get("failed", 0)
        pending = data.reconciliation_counts.get("pending", 0)
        verdict = (
            f'<span class="bad">{failed} failed</span>' if failed else '<span class="ok">nothing failed</span>'
        ) + f", {pending} pending (recent days the vendor may still restate)"
        parts.append(f"<h3>Reconciliation checks (marts.reconciliation)</h3><p>{verdict}. All rows: {_e(counts)}.</p>")
        if data.reconciliation:
            parts.append(
                "<table><thead><tr><th>status</th><th>check</th><th>platform</th><th>day</th><th>expected</th><th>actual</th>"
                "<th>difference</th><th>tolerance</th></tr></thead><tbody>"
            )
            for r in data.reconciliation:
                cls = "bad" if r["status"] == "failed" else "note"
                vals = [r["date_day"], r["expected"], r["actual"], r["difference"], r["tolerance"]]
                parts.append(
                    f'<tr><td class="{cls}">{_e(r["status"])}</td><td>{_e(r["check_name"])}</td><td>{_e(r["platform"] or NONE)}</td>'
                    + "".join(f"<td>{_e(NONE if v is None else v)}</td>" for v in vals) + "</tr>"
                )
            parts.append("</tbody></table>")
    elif data.has_marts:
        parts.append('<div class="missing">No reconciliation checks in the serving file (marts.reconciliation).</div>')
    return "".join(parts)


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1200px;padding:16px 24px;color:#1f2933}
h1{font-size:1.5em;margin:0 0 4px} h2{font-size:1.15em;margin:28px 0 8px} h3{font-size:1em}
.sub{color:#52606d;font-size:.9em} .notices{background:#fff8e1;border:1px solid #f0c36d;border-radius:6px;padding:8px 16px}
.notices li{margin:4px 0} .kpis{display:grid;grid-template-columns:repeat(4,1fr);gap:12px;margin-top:16px}
.kpi{border:1px solid #d9e2ec;border-radius:8px;padding:12px} .kpi .label{color:#52606d;font-size:.85em}
.kpi .value{font-size:1.6em;font-weight:600;margin:4px 0} .delta{font-size:.85em;color:#52606d}
.delta.up{color:#1e7d34} .delta.down{color:#b3261e} .split{font-size:.9em;margin-top:4px}
.flag{font-size:.8em;margin-top:6px;border-radius:4px;padding:2px 6px;display:inline-block}
.flag.est{background:#e8eaf6;color:#283593} .flag.unknown{background:#fdecea;color:#8a1c14}
.missing{border:1px dashed #9aa5b1;border-radius:6px;padding:24px;color:#52606d;text-align:center;margin:8px 0}
table{border-collapse:collapse;width:100%;font-size:.85em} th,td{border-bottom:1px solid #e4e7eb;padding:4px 6px;text-align:left;vertical-align:top}
table.sortable th{cursor:pointer;background:#f5f7fa} th[data-dir=asc]::after{content:" ▲"} th[data-dir=desc]::after{content:" ▼"}
.id{color:#9aa5b1;font-size:.85em} .ok{color:#1e7d34;font-weight:600} .bad{color:#b3261e;font-weight:600} .note{color:#52606d}
footer{margin-top:32px;color:#52606d;font-size:.8em}
"""

# Our only JavaScript: sort the campaigns table by a clicked column (unknown last).
SORT_JS = """
document.querySelectorAll('table.sortable th').forEach((th, i) => th.addEventListener('click', () => {
  const body = th.closest('table').tBodies[0], asc = th.dataset.dir !== 'asc';
  th.parentNode.querySelectorAll('th').forEach(h => delete h.dataset.dir); th.dataset.dir = asc ? 'asc' : 'desc';
  const key = r => r.cells[i].dataset.sort;
  [...body.rows].sort((a, b) => {
    const x = key(a), y = key(b);
    if (x === '' || y === '') return (x === '') - (y === '');
    const d = isNaN(x) || isNaN(y) ? x.localeCompare(y) : x - y;
    return asc ? d : -d;
  }).forEach(r => body.appendChild(r));
}));
"""


def render(data: Data, built_at: datetime) -> str:
    import plotly.offline

    cur = data.currency or "currency unknown"
    notices = "".join(f"<li>{_e(n)}</li>" for n in data.notices)
    notices_html = f'<ul class="notices" id="notices">{notices}</ul>' if notices else ""
    charts = False
    if data.start:
        spend_chart, conv_chart = _figures(data)
        charts = "Plotly.newPlot" in spend_chart + conv_chart
        body = (
            f'<section class="kpis" id="kpis">{_kpis(data)}</section>'
            f"<h2>Spend and conversions per day</h2>{spend_chart}{conv_chart}"
            f"<h2>Top {TOP_CAMPAIGNS} campaigns by spend ({_e(_period(data))})</h2>"
            '<p class="sub">Click a column to sort. ≈ estimated spend, +? some days unknown, — unknown. '
            "Attribution: how each conversion was credited (platform_reported, or a call matched by campaign_map, "
            "campaign_id or campaign_name; unattributed and ambiguous calls stay on the Retreaver campaign).</p>"
            f"{_campaigns(data)}"
        )
    else:
        body = '<div class="missing" id="no-data">No spend or conversions to show (see above).</div>'
    period = f"{_period(data)} ({data.days} days to the newest day in the marts, which may still be filling)" if data.start else "no period: no data"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Marketing dashboard {_e(_period(data))}</title><style>{CSS}</style>
{f'<script type="text/javascript">{plotly.offline.get_plotlyjs()}</script>' if charts else ""}</head>
<body>
<h1>Marketing dashboard</h1>
<div class="sub">Period {_e(period)} · reporting currency <b id="currency">{_e(cur)}</b> · built {_e(built_at.strftime('%Y-%m-%d %H:%M UTC'))} from {_e(data.serving)}</div>
{notices_html}
{body}
<h2>Data health</h2>
{_health(data)}
<footer>Days are each platform's own calendar (Marin Social: the account's time zone). Retreaver's spend is its call payouts and
costs, not media. Definitions: docs/data-model.md (marts) and docs/dashboard.md (this page).</footer>
<script>{SORT_JS}</script>
</body></html>
"""


def build_dashboard(warehouse: str | Path, out: str | Path | None = None, days: int = DEFAULT_DAYS) -> Dashboard:
    """Write the page for ``warehouse``'s serving file; returns where, its size and build time."""
    if days < 1:
        raise ValueError("--days must be at least 1")
    started = time.monotonic()
    target = Path(out) if out else dashboard_path(warehouse)
    data = read(serving_path(warehouse), days)
    page = render(data, datetime.now(UTC))
    # Written aside, then renamed: a browser refreshing the page never reads half of it.
    tmp = target.with_name(f".{target.name}.{os.getpid()}")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, target)
    return Dashboard(target, target.stat().st_size, time.monotonic() - started, list(data.notices))
