"""Golden-file tests of the marts: tiny hand-written raw tables in, marts compared
cell by cell with CSVs in ``tests/transforms/golden/<case>/<mart>.csv``.

The goldens are written BY HAND from the rules (issue "Transforms: unified daily
spend and conversion marts"), not dumped from the SQL: the point is to catch the
SQL being wrong. ``golden/README.md`` shows how each expected figure is derived.

Regenerating them from the current SQL is possible only on purpose, for a human to
review the diff: ``UPDATE_GOLDEN=1 pytest tests/transforms/test_marts_golden.py``.

Comparison: NULL is an empty cell; decimals are compared exactly after normalising
the scale (``8`` == ``8.0000``); floats (ctr) within 1e-9; timestamps as UTC ISO-8601.

Every case is built on DuckDB and on PostgreSQL (the dbt project is one SQL for
both): the same goldens hold on each.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import os
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import dlt
import duckdb
import pytest

from pipelines.dbt import build
from transforms import TRANSFORMS_DIR

GOLDEN_DIR = Path(__file__).parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"

MARTS = {
    # mart -> ORDER BY (its grain, so the order is total)
    "spend_daily": "date_day, platform, account_id, campaign_id",
    "conversions_daily": "date_day, platform, campaign_id, conversion_type",
    "call_conversions": "call_uuid",
    "marketing_daily": "date_day, platform, campaign_id",
    "reconciliation": "check_name, platform, date_day",
}

# Seeds of the test: rates from 2025-03-02 only, so 2025-03-01 has none (a gap that
# must show as NULL); EUR changes on 03-04, so 03-03 takes the latest earlier rate;
# GBP has one rate, so a GBP reporting currency needs a cross rate through USD.
FX_RATES = """rate_date,currency_code,usd_per_unit
2025-03-02,USD,1
2025-03-02,EUR,1.10
2025-03-02,GBP,1.25
2025-03-04,EUR,1.20
"""
# "NY Installs" is also a Marin campaign's name: the map must win over the name.
CAMPAIGN_MAP = """utm_campaign,platform,campaign_id
map-spring,listenloop,5001
NY Installs,listenloop,5002
"""

# Raw tables as the dlt sources land them: only the columns staging reads, with the
# types dlt gives them (money DECIMAL(18,6), timestamps TIMESTAMPTZ, ids as loaded).
RAW: dict[str, tuple[str, list[tuple]]] = {
    # 5001 starts 03-01 (start_date); 5002 has no start_date: created_at (03-01 18:00
    # UTC) stands in. 5002 is CPC: spend is clicks x ecpc_target (0.50), never
    # max_bid (the max CPM bid). 5003 shares its name with Marin's ms-1.
    "listenloop.campaigns": (
        "id bigint, organization_id bigint, name varchar, user_defined_status varchar, bidding_strategy varchar,"
        " user_defined_cpm decimal(18,6), max_bid decimal(18,6), ecpc_target decimal(18,6), daily_budget decimal(18,6),"
        " bw_lifetime_budget decimal(18,6), start_date date, end_date date, created_at timestamptz, updated_at timestamptz,"
        " archived_at timestamptz",
        [
            (5001, 900, "Spring Display", "active", "CPM", "10.00", None, None, "50", "1000", "2025-03-01", None, "2025-02-20T00:00:00Z", "2025-03-03T12:00:00Z", None),
            (5002, 900, "Retarget CPC", "active", "CPC", None, "1.50", "0.50", "50", "1000", None, None, "2025-03-01T18:00:00Z", "2025-03-03T12:00:00Z", None),
            (5003, 900, "Berlin Leads", "active", "CPM", "20.00", None, None, "50", "1000", None, None, "2025-03-01T00:00:00Z", "2025-03-04T00:00:00Z", None),
        ],
    ),
    # 5001 (CPM): first snapshot after 30 hours of delivery (history to spread);
    # the CPM bid goes 8 -> 10 before run 3, stamped 23:30 at -05:00 = 04:30 UTC on
    # 03-04. 5002 (CPC): at run 3 impressions still grow but clicks dip 50 -> 48 and
    # conversions go NULL (= 0): corrections. 5003: created at its first snapshot
    # (nothing yet), then a gap of three whole days until its counters next moved.
    "listenloop.campaign_snapshots": (
        "campaign_id bigint, snapshot_at timestamptz, bidding_strategy varchar, impressions_count bigint,"
        " clicks_count bigint, conversion_c_page_views_count bigint, user_defined_cpm decimal(18,6), max_bid decimal(18,6),"
        " ecpc_target decimal(18,6), campaign_updated_at timestamptz",
        [
            (5001, "2025-03-02T06:00:00Z", "CPM", 1000, 10, 1, "8.00", None, None, None),
            (5001, "2025-03-03T06:00:00Z", "CPM", 2500, 25, 3, "8.00", None, None, None),
            (5001, "2025-03-03T23:30:00-05:00", "CPM", 3000, 30, 3, "10.00", None, None, None),
            (5002, "2025-03-02T06:00:00Z", "CPC", 400, 20, 2, None, "1.50", "0.50", None),
            (5002, "2025-03-03T06:00:00Z", "CPC", 900, 50, 4, None, "1.50", "0.50", None),
            (5002, "2025-03-03T23:30:00-05:00", "CPC", 950, 48, None, None, "1.50", None, None),
            (5003, "2025-03-01T00:00:00Z", "CPM", 0, 0, 0, "20.00", None, None, None),
            # Read at 09:00, but its counters last moved at midnight (updated_at): the gap ends there.
            (5003, "2025-03-04T09:00:00Z", "CPM", 3000, 6, 0, "20.00", None, None, "2025-03-04T00:00:00Z"),
        ],
    ),
    "marin_social.accounts": (
        "id varchar, name varchar, currency varchar, timezone varchar, active boolean",
        [
            ("act_eur", "EU Account", "EUR", "Europe/Berlin", True),
            ("act_usd", "US Account", "USD", "America/New_York", True),
        ],
    ),
    "marin_social.campaigns": (
        "id varchar, name varchar, account_id varchar, media_plan_id varchar, status varchar,"
        " budget decimal(18,6), daily_budget decimal(18,6), deleted boolean, archived boolean",
        [
            ("ms-1", "Berlin Leads", "act_eur", "mp1", "active", None, "20", False, False),
            ("ms-2", "NY Installs", "act_usd", "mp2", "active", None, "60", False, False),
        ],
    ),
    # ms-1 (EUR): 03-01 is before the first rate; 03-03 between rates; 03-04 no
    # delivery but a conversion. ms-2 (USD). Currency in lower case once (upper()d).
    "marin_social.campaign_stats_daily": (
        "date date, campaign_id varchar, client_id varchar, account_id varchar, impression bigint, click bigint,"
        " spent decimal(18,6), currency varchar, timezone varchar, conversions bigint, conversions_value decimal(18,6)",
        [
            ("2025-03-01", "ms-1", "mp1", "act_eur", 1000, 50, "20.00", "EUR", "Europe/Berlin", 2, "30.00"),
            ("2025-03-03", "ms-1", "mp1", "act_eur", 2000, 0, "11.00", "eur", "Europe/Berlin", 0, "0"),
            ("2025-03-04", "ms-1", "mp1", "act_eur", 0, 0, "0", "EUR", "Europe/Berlin", 1, "10.00"),
            ("2025-03-02", "ms-2", "mp2", "act_usd", 500, 25, "50.00", "USD", "America/New_York", 5, "200.00"),
        ],
    ),
    "marin_social.ad_stats_daily": (
        "date date, ad_id varchar, campaign_id varchar, client_id varchar, impression bigint, click bigint, spent decimal(18,6)",
        [
            ("2025-03-01", "ad-1a", "ms-1", "mp1", 600, 30, "12.00"),
            ("2025-03-01", "ad-1b", "ms-1", "mp1", 400, 20, "8.00"),
            # One cent short of the campaign level, on a day past the restatement window.
            ("2025-03-03", "ad-1a", "ms-1", "mp1", 2000, 0, "10.99"),
            ("2025-03-04", "ad-1a", "ms-1", "mp1", 0, 0, "0"),
            ("2025-03-02", "ad-2a", "ms-2", "mp2", 500, 25, "50.00"),
        ],
    ),
    # 7001 started 23:30 at -02:00 = 01:30 UTC on 03-03 (the send date). 7002 is a draft.
    "inboxfirst.campaigns": (
        "id bigint, mailing_list_id bigint, mailing_list_name varchar, name varchar, dispatch__started_at timestamptz,"
        " dispatch__finished_at timestamptz, dispatch__state varchar, stat_summary__messages_sent bigint,"
        " stat_summary__accepted bigint, stat_summary__opens_unique bigint, stat_summary__clicks_unique bigint,"
        " stat_summary__clicks_total bigint, stat_summary__unsubs_unique bigint, stat_summary__bounces_unique bigint",
        [
            (7001, 300, "Newsletter", "March Promo", "2025-03-02T23:30:00-02:00", "2025-03-03T02:00:00Z", "finished", 4000, 3900, 1000, 78, 100, 5, 100),
            (7002, 300, "Newsletter", "April Draft", None, None, "draft", None, None, None, None, None, None, None),
        ],
    ),
    "retreaver.campaigns": (
        "id bigint, cid varchar, name varchar, created_at timestamptz, updated_at timestamptz",
        [
            (801, "RC-801", "Inbound Sales", "2025-01-01T00:00:00Z", "2025-01-01T00:00:00Z"),
            (802, "RC-802", "Partner Line", "2025-01-01T00:00:00Z", "2025-01-01T00:00:00Z"),
        ],
    ),
    # c1 via the map (case and spaces differ; the map wins whatever the source), c2
    # via a campaign id (its source "ll" is not in the seed: every platform open), c3
    # via a campaign name in another case (fb -> Marin Social, so not ListenLoop's
    # 5003 of the same name), c4 matches nothing; c5 and c6 did not convert (c6's
    # converted is NULL and it came in 23:00 at -05:00 = 04:00 UTC on 03-03). c7 is
    # on 03-01, before any USD or GBP rate: fine in USD (USD->USD is 1), but with a
    # GBP reporting currency its money cannot be converted and must stay NULL.
    # c8: the name of ms-1 and of 5003, no source: ambiguous, stays unattributed.
    # c9: linkedin -> ListenLoop 5003 by name. c10: newsletter -> the email send
    # 7001 by name. c11: Marin's ms-1 at 23:30 UTC = 00:30 on 03-04 in Berlin.
    "retreaver.calls": (
        "uuid varchar, created_at timestamptz, updated_at timestamptz, company_id bigint, campaign_id bigint, cid varchar,"
        " campaign_name varchar, system_affiliate_id bigint, affiliate_name varchar, status varchar, converted boolean,"
        " connected boolean, duplicate boolean, revenue decimal(18,6), payout decimal(18,6), total_cost decimal(18,6),"
        " total_duration bigint, tag_utm_source varchar, tag_utm_campaign varchar, tag_email varchar",
        [
            ("c1", "2025-03-02T10:00:00Z", "2025-03-02T12:00:00Z", 55, 801, "RC-801", "Inbound Sales", 1, "Aff", "completed", True, True, False, "100", "30", "2.00", 300, "fb", " Map-Spring", None),
            ("c2", "2025-03-02T11:00:00Z", "2025-03-02T12:00:00Z", 55, 801, "RC-801", "Inbound Sales", 1, "Aff", "completed", True, True, False, "50", "20", "1.50", 200, "ll", "5002", None),
            ("c3", "2025-03-03T09:00:00Z", "2025-03-03T12:00:00Z", 55, 802, "RC-802", "Partner Line", 1, "Aff", "completed", True, True, False, "80", "25", "1.00", 120, "fb", "berlin LEADS", "A@B.COM "),
            ("c4", "2025-03-03T09:30:00Z", "2025-03-03T12:00:00Z", 55, 802, "RC-802", "Partner Line", 1, "Aff", "completed", True, True, False, "40", "10", "0.50", 90, None, "unknown-utm", None),
            ("c5", "2025-03-03T10:00:00Z", "2025-03-03T12:00:00Z", 55, 802, "RC-802", "Partner Line", 1, "Aff", "completed", False, True, False, None, None, "0.75", 30, "fb", "berlin leads", None),
            ("c6", "2025-03-02T23:00:00-05:00", "2025-03-03T12:00:00Z", 55, 801, "RC-801", "Inbound Sales", 1, "Aff", "no-answer", None, False, False, None, None, "0.25", 5, None, None, None),
            ("c7", "2025-03-01T15:00:00Z", "2025-03-01T16:00:00Z", 55, 801, "RC-801", "Inbound Sales", 1, "Aff", "completed", True, True, False, "60", "15", "1.00", 240, None, "ny installs", None),
            ("c8", "2025-03-03T10:30:00Z", "2025-03-03T12:00:00Z", 55, 802, "RC-802", "Partner Line", 1, "Aff", "completed", True, True, False, "20", "5", "0.50", 60, None, "Berlin Leads", None),
            ("c9", "2025-03-03T11:00:00Z", "2025-03-03T12:00:00Z", 55, 801, "RC-801", "Inbound Sales", 1, "Aff", "completed", True, True, False, "70", "20", "1.00", 100, "LinkedIn ", "berlin leads", None),
            ("c10", "2025-03-03T12:00:00Z", "2025-03-03T13:00:00Z", 55, 801, "RC-801", "Inbound Sales", 1, "Aff", "completed", True, True, False, "30", "0", "0.50", 80, "newsletter", "March Promo", None),
            ("c11", "2025-03-03T23:30:00Z", "2025-03-03T23:59:00Z", 55, 802, "RC-802", "Partner Line", 1, "Aff", "completed", True, True, False, "20", "5", "0.50", 70, "instagram", "BERLIN LEADS", None),
        ],
    ),
    # Retreaver's own daily totals. 03-02 equals the calls. 03-03 was read before
    # c11 came in (a live source): one call, 20 revenue, 5 payout, 0.50 cost short,
    # within the tolerance on the newest day: pending, not failed.
    "retreaver.report_daily": (
        "day date, total_calls bigint, converted_count double, revenue decimal(18,6), payout decimal(18,6), cost decimal(18,6)",
        [
            ("2025-03-02", 2, 2.0, "150", "50", "3.50"),
            ("2025-03-03", 7, 5.0, "240", "60", "4.50"),
        ],
    ),
}

# Restatement windows of one day (the newest): the older days must tie out exactly.
SETTINGS = {
    "reporting_timezone": "",
    "marin_social_restatement_days": "1",
    "retreaver_restatement_days": "1",
    "reconciliation_tolerance_abs": "5",
    "reconciliation_tolerance_pct": "10",
}
# Email costs as a user configures them; the shipped seed leaves the cost unknown.
EMAIL_COST_PER_THOUSAND = """platform,cost_basis,cost,currency_code,valid_from
inboxfirst,per_thousand_sent,2.50,USD,2025-01-01
"""
CASES = {
    # USD reporting, 2.50 USD per thousand emails sent.
    "usd": ({**SETTINGS, "reporting_currency": "USD"}, {"platform_costs.csv": EMAIL_COST_PER_THOUSAND}),
    # GBP reporting: USD and EUR through cross rates; email cost not configured
    # (the shipped seed): unknown, so null.
    "gbp": ({**SETTINGS, "reporting_currency": "gbp"}, {}),
}
# Checked by targeted assertions (test_reporting_timezone_...), not golden files: a
# reporting time zone (Berlin, UTC+1 in March) and every email cost basis.
EMAIL_COSTS_ALL_BASES = """platform,cost_basis,cost,currency_code,valid_from
inboxfirst,per_thousand_sent,2.50,USD,2025-01-01
inboxfirst,per_thousand_sent,9.99,USD,2025-04-01
inboxfirst,per_send,5,,2025-03-01
inboxfirst,monthly,300,USD,2025-03-01
"""
EXTRA_CASES = {
    "berlin": (
        {**SETTINGS, "reporting_currency": "USD", "reporting_timezone": "Europe/Berlin"},
        {"platform_costs.csv": EMAIL_COSTS_ALL_BASES},
    ),
}


def load_raw(db: Path) -> None:
    with duckdb.connect(str(db)) as con:
        con.execute("SET TimeZone = 'UTC'")
        for table, (columns, rows) in RAW.items():
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {table.split('.')[0]}")
            con.execute(f"CREATE TABLE {table} ({columns})")
            if rows:
                marks = ", ".join("?" * len(rows[0]))
                con.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)


def load_raw_postgres(url: str) -> None:
    import psycopg2

    with psycopg2.connect(url) as con, con.cursor() as cur:
        cur.execute("SET TimeZone = 'UTC'")
        for table, (columns, rows) in RAW.items():
            cur.execute(f"CREATE SCHEMA IF NOT EXISTS {table.split('.')[0]}")
            # The same types; Postgres spells DuckDB's double "double precision".
            cur.execute(f"CREATE TABLE {table} ({columns.replace(' double', ' double precision')})")
            if rows:
                marks = ", ".join(["%s"] * len(rows[0]))
                cur.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)


def read_marts(destination: str, where: Any) -> tuple[dict[str, tuple[list[str], list[tuple]]], list[tuple[str, str, str]]]:
    """Every mart in its grain's order, and (table, column, type) of their columns,
    types spelled as DuckDB does (DECIMAL(18,4), BIGINT, DOUBLE)."""
    marts = {}
    if destination == "duckdb":
        with duckdb.connect(str(where), read_only=True) as con:
            con.execute("SET TimeZone = 'UTC'")
            for mart, order_by in MARTS.items():
                cur = con.execute(f"select * from marts.{mart} order by {order_by}")
                marts[mart] = ([d[0] for d in cur.description], cur.fetchall())
            types = con.execute(
                "select table_name, column_name, data_type from information_schema.columns where table_schema = 'marts'"
            ).fetchall()
        return marts, types
    import psycopg2

    with psycopg2.connect(where) as con, con.cursor() as cur:
        cur.execute("SET TimeZone = 'UTC'")
        for mart, order_by in MARTS.items():
            cur.execute(f"select * from marts.{mart} order by {order_by}")
            marts[mart] = ([d[0] for d in cur.description], cur.fetchall())
        cur.execute(
            "select table_name, column_name, data_type, numeric_precision, numeric_scale "
            "from information_schema.columns where table_schema = 'marts'"
        )
        spelled = {"bigint": "BIGINT", "double precision": "DOUBLE", "integer": "INTEGER"}
        types = [
            (t, c, f"DECIMAL({p},{s})" if d == "numeric" else spelled.get(d, d.upper())) for t, c, d, p, s in cur.fetchall()
        ]
    return marts, types


def normalise(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        text = format(value.normalize(), "f")
        return "0" if text in ("-0", "0") else text
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def cell_matches(actual, expected: str) -> bool:
    if actual is None or expected == "":
        return actual is None and expected == ""
    if isinstance(actual, float):
        return math.isclose(actual, float(expected), rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(actual, Decimal):
        return actual == Decimal(expected)  # exact, whatever the scale
    if isinstance(actual, dt.datetime):
        return normalise(actual) == dt.datetime.fromisoformat(expected).astimezone(dt.UTC).isoformat()
    return normalise(actual) == expected


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def built(request, tmp_path_factory):
    """Each case built once per destination on its own copy of the raw tables and
    the transforms: {case: (tests by name, marts, column types)}."""
    destination = request.param
    out = {}
    for case, (settings, seeds) in {**CASES, **EXTRA_CASES}.items():
        base = tmp_path_factory.mktemp(f"golden_{destination}_{case}")
        root = base / "transforms"
        shutil.copytree(TRANSFORMS_DIR, root, ignore=shutil.ignore_patterns("__pycache__", "*.py", "target", "logs"))
        (root / "seeds" / "fx_rates.csv").write_text(FX_RATES)
        (root / "seeds" / "campaign_map.csv").write_text(CAMPAIGN_MAP)
        for name, text in seeds.items():
            (root / "seeds" / name).write_text(text)
        if destination == "duckdb":
            where: Any = base / "w.duckdb"
            load_raw(where)
            target = dlt.destinations.duckdb(str(where))
        else:
            where = request.getfixturevalue("postgres_server").create_database(f"golden_{case}")
            load_raw_postgres(where)
            target = dlt.destinations.postgres(credentials=where)
        pipeline = dlt.pipeline(f"golden_{case}", destination=target, dataset_name="marts", pipelines_dir=str(base / "dlt"))
        tests = {t.name: t for t in build(pipeline, root=root, settings=settings).tests}
        out[case] = (tests, *read_marts(destination, where))
    return out


@pytest.mark.parametrize("mart", list(MARTS))
@pytest.mark.parametrize("case", list(CASES))
def test_mart_matches_golden(built, case, mart):
    columns, rows = built[case][1][mart]
    path = GOLDEN_DIR / case / f"{mart}.csv"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(columns)
            writer.writerows([normalise(v) for v in row] for row in rows)
        pytest.skip(f"rewrote {path} from the current SQL: review the diff by hand")
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        expected = [row for row in reader if row]
    assert columns == header, f"{mart}: columns differ"
    problems = [f"row count: actual {len(rows)}, golden {len(expected)}"] if len(rows) != len(expected) else []
    for i, (got, want) in enumerate(zip(rows, expected), start=1):
        for name, a, e in zip(columns, got, want):
            if not cell_matches(a, e):
                problems.append(f"row {i} {name}: actual {normalise(a)!r}, golden {e!r}  (actual row {[normalise(v) for v in got]})")
    assert not problems, f"{case}/{mart}:\n" + "\n".join(problems)


def test_data_tests_flag_only_the_missing_rate_and_the_old_mismatch(built):
    """The gaps in the rates and the Marin day past its restatement window fail the
    reconciliation test; the live difference on Retreaver's newest day is pending,
    not failed; every other data test passes (calls counted once, ListenLoop days
    adding up to the lifetime counters, no ratio on unknown spend...)."""
    for case in CASES:
        tests = built[case][0]
        failing = sorted(name for name, t in tests.items() if not t.ok)
        assert failing == ["reconciliation_ties_out"], (case, failing)
        checks = {(row[0], row[2]) for row in tests["reconciliation_ties_out"].sample}
        assert all(name.startswith("fx_rate") or (name.startswith("marin_social") and day == dt.date(2025, 3, 3)) for name, day in checks), checks
        assert ("marin_social spend_local: campaigns = ads, per media plan and day", dt.date(2025, 3, 3)) in checks
        _, rows = built[case][1]["reconciliation"]
        pending = {(r[0], r[2]) for r in rows if r[7] == "pending"}
        assert {day for _, day in pending} == {dt.date(2025, 3, 3)} and all(name.startswith("retreaver report_daily") for name, _ in pending)


def test_listenloop_days_add_up_to_the_latest_lifetime_counters(built):
    """Whatever the spreading (history, gap) and the corrections (dip), each
    campaign's days sum to its last snapshot's counters."""
    columns, rows = built["usd"][1]["spend_daily"]
    col = {name: i for i, name in enumerate(columns)}
    sums: dict[str, list[int]] = {}
    for row in rows:
        if row[col["platform"]] == "listenloop":
            totals = sums.setdefault(row[col["campaign_id"]], [0, 0])
            totals[0] += row[col["impressions"]]
            totals[1] += row[col["clicks"]]
    last = {str(cid): (imp, clk) for cid, _, _, imp, clk, *_ in RAW["listenloop.campaign_snapshots"][1]}
    assert {cid: tuple(v) for cid, v in sums.items()} == last == {"5001": (3000, 30), "5002": (950, 48), "5003": (3000, 6)}


def test_marketing_daily_counts_every_converted_call_once(built):
    """Summed over all rows, calls equal the converted calls (9), wherever they are owned."""
    for case in CASES:
        columns, rows = built[case][1]["marketing_daily"]
        assert sum(r[columns.index("calls")] for r in rows) == len(built[case][1]["call_conversions"][1]) == 9


# Types a BI tool reads without surprises: counts BIGINT, money DECIMAL(18,4) (the
# local amounts and rates at the source's precision, as documented), rates DOUBLE.
COUNT_COLUMNS = {"impressions", "clicks", "conversions", "platform_conversions", "calls", "candidate_campaigns"}
MONEY_COLUMNS = {"spend", "conversions_value", "platform_conversions_value", "call_revenue", "revenue", "payout", "cost", "cpc", "cpa"}
RATE_COLUMNS = {"ctr", "roas"}


def test_mart_columns_have_bi_friendly_types(built):
    types = built["usd"][2]
    assert types
    for table, column, data_type in types:
        assert data_type != "HUGEINT", (table, column)
        if column in COUNT_COLUMNS:
            assert data_type == "BIGINT", (table, column, data_type)
        if column in MONEY_COLUMNS:
            assert data_type == "DECIMAL(18,4)", (table, column, data_type)
        if column in RATE_COLUMNS:
            assert data_type == "DOUBLE", (table, column, data_type)


def test_every_mart_column_is_documented(built):
    """docs/data-model.md describes every column of every mart, under its heading."""
    doc = (Path(__file__).parents[2] / "docs" / "data-model.md").read_text()
    for mart in MARTS:
        section = doc.split(f"### `marts.{mart}`", 1)[1].split("\n### ", 1)[0]
        assert "**Grain:**" in section and "calendar" in section.lower(), mart
        columns, _ = built["usd"][1][mart]
        documented = {name for line in section.splitlines() if line.startswith("| `") for name in _backticked(line.split("|")[1])}
        missing = [c for c in columns if c not in documented]
        assert not missing, f"marts.{mart}: columns not in docs/data-model.md: {missing}"


def _backticked(cell: str) -> set[str]:
    return set(cell.split("`")[1::2])


def test_reporting_timezone_moves_utc_platforms_and_calls_but_not_marin(built):
    """reporting_timezone = Europe/Berlin (UTC+1). Derivations in golden/README.md."""
    tests, marts, _ = built["berlin"]
    assert sorted(name for name, t in tests.items() if not t.ok) == ["reconciliation_ties_out"]

    def rows(mart, **where):
        columns, data = marts[mart]
        dicts = [dict(zip(columns, r)) for r in data]
        return [d for d in dicts if all(d[k] == v for k, v in where.items())]

    # 5001: 31 h of history from midnight 03-01 Berlin (23:00 UTC) to 07:00 Berlin on
    # 03-02, then intervals of 17 h + 7 h and 17 h + 5.5 h.
    days = {r["date_day"].isoformat(): r["impressions"] for r in rows("spend_daily", platform="listenloop", campaign_id="5001")}
    assert days == {"2025-03-01": 774, "2025-03-02": 1062 + 226, "2025-03-03": 438 + 377, "2025-03-04": 123}
    assert {r["date_day_timezone"] for r in rows("spend_daily", platform="listenloop")} == {"Europe/Berlin"}
    # Marin stays on the account's calendar.
    assert [r["date_day_timezone"] for r in rows("spend_daily", campaign_id="ms-2")] == ["America/New_York"]
    # Email: 4000 sent x 2.50 / 1000 + 5 per send + the whole March fee (one send) = 315;
    # the 9.99 rate starts after the send.
    (email,) = rows("spend_daily", platform="inboxfirst")
    assert (email["date_day"].isoformat(), email["spend"], email["date_day_timezone"]) == ("2025-03-03", 315, "Europe/Berlin")
    # c11 came in 23:30 UTC on 03-03 = 00:30 in Berlin on 03-04: Retreaver's call spend follows.
    spend_802 = {r["date_day"].isoformat(): r["spend"] for r in rows("spend_daily", platform="retreaver", campaign_id="802")}
    assert spend_802 == {"2025-03-03": Decimal("42.75"), "2025-03-04": Decimal("5.5")}
    calls = {r["call_uuid"]: (r["date_day"].isoformat(), r["date_day_timezone"]) for r in rows("call_conversions")}
    assert calls["c11"] == ("2025-03-04", "Europe/Berlin") and calls["c4"] == ("2025-03-03", "Europe/Berlin")
    assert calls["c9"] == ("2025-03-03", "Europe/Berlin")


def test_every_mart_column_is_described_in_the_dbt_schema(built):
    """The generated docs (dbt docs generate) describe every column of every mart."""
    import yaml

    models = {m["name"]: m for m in yaml.safe_load((TRANSFORMS_DIR / "models" / "marts" / "_marts.yml").read_text())["models"]}
    for mart in MARTS:
        columns, _ = built["usd"][1][mart]
        described = {c["name"]: c.get("description", "").strip() for c in models[mart].get("columns", [])}
        assert models[mart].get("description"), mart
        assert [c for c in columns if not described.get(c)] == [], mart
        assert [c for c in described if c not in columns] == [], f"{mart}: described columns it does not have"
