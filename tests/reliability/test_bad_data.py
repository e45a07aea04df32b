"""Bad data: every kind of garbage a vendor may send, served by the sandbox's
generic ``corrupt`` rules (sandbox.core.CorruptRule), one source run per case.

Each case ends one of two ways, never a third:
* loaded faithfully: the source loads, the odd value is stored as sent (or
  coerced losslessly: "123" in a bigint column), every other row is there;
* rejected: the source fails with a message naming source, endpoint and field, or
  the record is skipped and counted (``skipped_entities``, detail naming the
  field) while the rows around it load. After a failure, the next clean run loads
  everything (nothing lost).
No silent drop: rows missing from a table = rows counted as skipped.
See docs/reliability.md for the matrix and figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.sources.conftest import Warehouse

SCALE = 0.05
UNICODE = "Café ☕ 東京 🚀 \u202eevil\u202c ñ \"quoted\" 'single' \\ back"


@dataclass
class Case:
    kind: str
    source: str
    rule: dict[str, Any]  # a corrupt rule, or {"fault": kind, ...}
    table: str  # the table(s), "a+b", whose rows are compared with a clean run
    outcome: str  # "loaded" | "skipped" | "failed"
    stored: str | None = None  # SQL count(*) that must be >= 1 when loaded faithfully
    names: tuple[str, ...] = ()  # words a failure/skip message must hold (besides source and endpoint)
    id: str = ""


CASES = [
    # --- non-JSON bodies (status 200)
    Case("non-JSON body", "listenloop", {"body": "<html><body>Service temporarily unavailable</body></html>", "path_contains": "/campaigns"}, "campaigns", "failed", names=("not JSON",)),
    Case("non-JSON body", "inboxfirst", {"body": "OK", "path_contains": "/campaigns/", "count": 1}, "campaigns", "skipped", names=("not JSON",)),
    Case("non-JSON body", "retreaver", {"body": "", "path_contains": "reports"}, "report_daily", "failed", names=("empty body",)),
    Case("non-JSON body", "marin_social", {"body": "<!doctype html><title>502</title>", "path_contains": "/statistics", "count": 1}, "campaign_stats_daily+ad_stats_daily", "failed", names=("not JSON",)),
    # --- records missing their primary key
    Case("missing primary key", "retreaver", {"field": "cid", "delete": True, "where": "cid", "count": 1, "path_contains": "campaigns"}, "campaigns", "skipped", names=("cid",)),
    Case("missing primary key", "retreaver", {"field": "uuid", "delete": True, "where": "uuid", "count": 1, "path_contains": "calls"}, "calls", "skipped", names=("uuid",)),
    Case("missing primary key", "listenloop", {"field": "id", "delete": True, "where": "id", "count": 1, "path_contains": "/campaigns"}, "campaigns", "skipped", names=("id",)),
    Case("missing primary key", "marin_social", {"field": "date", "delete": True, "where": "date", "count": 1, "path_contains": "/statistics"}, "campaign_stats_daily+ad_stats_daily", "skipped", names=("date",)),
    Case("missing primary key", "inboxfirst", {"field": "link_id", "delete": True, "where": "link_id", "count": 1, "path_contains": "link_stats"}, "link_stats", "skipped", names=("link_id",)),
    # --- numbers as strings: coerced losslessly
    Case("number as string", "listenloop", {"field": "impressions_count", "value": "123456789", "where": "id", "count": 1}, "campaigns", "loaded", stored="select count(*) from listenloop.campaigns where impressions_count = 123456789"),
    Case("number as string", "marin_social", {"field": "spent", "value": "4321.09", "where": "spent", "count": 1, "path_contains": "/statistics"}, "campaign_stats_daily+ad_stats_daily", "loaded", stored="select count(*) from (select spent from marin_social.campaign_stats_daily union all select spent from marin_social.ad_stats_daily) where spent = 4321.09"),
    Case("number as string", "retreaver", {"field": "revenue", "value": "77.25", "where": "revenue", "count": 1, "path_contains": "calls"}, "calls", "loaded", stored="select count(*) from retreaver.calls where revenue = 77.25"),
    # --- strings as numbers, and strings where numbers belong
    Case("string as number", "marin_social", {"field": "name", "value": 4242, "where": "name", "count": 1, "path_contains": "/accounts"}, "accounts", "loaded", stored="select count(*) from marin_social.accounts where name = '4242'"),
    Case("string as number", "retreaver", {"field": "name", "value": 9001, "where": "cid", "count": 1, "path_contains": "campaigns"}, "campaigns", "loaded", stored="select count(*) from retreaver.campaigns where name = '9001'"),
    Case("text in a number field", "listenloop", {"field": "impressions_count", "value": "lots", "where": "id", "count": 1}, "campaigns", "skipped", names=("impressions_count",)),
    Case("text in a money field", "marin_social", {"field": "spent", "value": "n/a", "where": "spent", "count": 1, "path_contains": "/statistics"}, "campaign_stats_daily+ad_stats_daily", "skipped", names=("spent",)),
    Case("text in a money field", "retreaver", {"field": "revenue", "value": "twelve", "where": "revenue", "count": 1, "path_contains": "calls"}, "calls", "skipped", names=("revenue",)),
    # --- unknown new fields: a new column, reported as a schema change
    Case("unknown new field", "listenloop", {"field": "brand_new_metric", "value": 3.5, "where": "id"}, "campaigns", "loaded", stored="select count(*) from listenloop.campaigns where brand_new_metric = 3.5"),
    Case("unknown new field", "retreaver", {"field": "brand_new_flag", "value": "yes", "where": "uuid", "path_contains": "calls"}, "calls", "loaded", stored="select count(*) from retreaver.calls where brand_new_flag = 'yes'"),
    Case("unknown new field", "inboxfirst", {"field": "brand_new_text", "value": "x", "where": "link_id", "path_contains": "link_stats"}, "link_stats", "loaded", stored="select count(*) from inboxfirst.link_stats where brand_new_text = 'x'"),
    # --- nulls everywhere (every field but the key)
    Case("nulls everywhere", "listenloop", {"field": "*", "value": None, "where": "id", "count": 1}, "campaigns", "loaded", stored="select count(*) from listenloop.campaigns where name is null and impressions_count is null"),
    Case("nulls everywhere", "retreaver", {"field": "*", "value": None, "where": "cid", "count": 1, "path_contains": "campaigns"}, "campaigns", "loaded", stored="select count(*) from retreaver.campaigns where name is null"),
    Case("nulls everywhere", "marin_social", {"field": "*", "value": None, "where": "id", "count": 1, "path_contains": "/campaigns"}, "campaigns", "loaded", stored="select count(*) from marin_social.campaigns where name is null"),
    Case("nulls everywhere", "inboxfirst", {"field": "*", "value": None, "where": "link_id", "count": 1, "path_contains": "link_stats"}, "link_stats", "loaded", stored="select count(*) from inboxfirst.link_stats where url is null"),
    # --- unicode, stored exactly
    Case("unicode", "listenloop", {"field": "name", "value": UNICODE, "where": "id", "count": 1}, "campaigns", "loaded", stored="select count(*) from listenloop.campaigns where name = ?"),
    Case("unicode", "retreaver", {"field": "name", "value": UNICODE, "where": "cid", "count": 1, "path_contains": "campaigns"}, "campaigns", "loaded", stored="select count(*) from retreaver.campaigns where name = ?"),
    Case("unicode", "marin_social", {"field": "name", "value": UNICODE, "where": "name", "count": 1, "path_contains": "/accounts"}, "accounts", "loaded", stored="select count(*) from marin_social.accounts where name = ?"),
    Case("unicode", "inboxfirst", {"field": "name", "value": UNICODE, "where": "name", "count": 1, "path_contains": "/campaigns/"}, "campaigns", "loaded", stored="select count(*) from inboxfirst.campaigns where name = ?"),
    # --- absurd values, stored as sent (the marts' data tests judge them)
    Case("negative spend", "marin_social", {"field": "spent", "value": -125.5, "where": "spent", "count": 1, "path_contains": "/statistics"}, "campaign_stats_daily+ad_stats_daily", "loaded", stored="select count(*) from (select spent from marin_social.campaign_stats_daily union all select spent from marin_social.ad_stats_daily) where spent = -125.5"),
    Case("negative money", "retreaver", {"field": "payout", "value": -40, "where": "payout", "count": 1, "path_contains": "calls"}, "calls", "loaded", stored="select count(*) from retreaver.calls where payout = -40"),
    Case("date in 1970", "listenloop", {"field": "start_date", "value": "1970-01-01", "where": "id", "count": 1}, "campaigns", "loaded", stored="select count(*) from listenloop.campaigns where start_date = date '1970-01-01'"),
    Case("date in 2100", "listenloop", {"field": "end_date", "value": "2100-12-31", "where": "id", "count": 1}, "campaigns", "loaded", stored="select count(*) from listenloop.campaigns where end_date = date '2100-12-31'"),
    Case("timestamp in 1970", "retreaver", {"field": "created_at", "value": "1970-01-01T00:00:00.000Z", "where": "uuid", "count": 1, "path_contains": "calls"}, "calls", "loaded", stored="select count(*) from retreaver.calls where created_at = timestamptz '1970-01-01 00:00:00+00'"),
    Case("huge number", "listenloop", {"field": "clicks_count", "value": 9_000_000_000_000, "where": "id", "count": 1}, "campaigns", "loaded", stored="select count(*) from listenloop.campaigns where clicks_count = 9000000000000"),
]
for case in CASES:
    case.id = f"{case.kind}-{case.source}.{case.table.split('+')[0]}".replace(" ", "_")
# The default run: at least one case of every kind, every source with data at least
# once (a few minutes); `--long` runs them all.
QUICK = {
    "non-JSON_body-listenloop.campaigns", "non-JSON_body-inboxfirst.campaigns", "missing_primary_key-retreaver.calls",
    "missing_primary_key-listenloop.campaigns", "number_as_string-marin_social.campaign_stats_daily",
    "string_as_number-retreaver.campaigns", "text_in_a_money_field-marin_social.campaign_stats_daily",
    "unknown_new_field-inboxfirst.link_stats", "nulls_everywhere-listenloop.campaigns", "unicode-retreaver.campaigns",
    "negative_spend-marin_social.campaign_stats_daily", "date_in_2100-listenloop.campaigns", "timestamp_in_1970-retreaver.calls",
}


@pytest.fixture
def sandbox_scale() -> float:
    """Every test here that uses the sandbox wants the small world: reset it once, at SCALE."""
    return SCALE


@pytest.fixture
def small_warehouse(sandbox, monkeypatch, tmp_path) -> Warehouse:
    """A throwaway warehouse against the sandbox, reset at SCALE (sandbox_scale above)."""
    for name, value in sandbox.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt"))
    monkeypatch.setenv("RUNTIME__REQUEST_BACKOFF_FACTOR", "0.05")
    monkeypatch.setenv("RUNTIME__REQUEST_MAX_RETRY_DELAY", "1")
    return Warehouse(tmp_path / "warehouse.duckdb")


_CLEAN: dict[str, dict[str, int]] = {}


def clean_counts(source: str, sandbox, tmp_path, monkeypatch) -> dict[str, int]:
    """Rows per table of a clean run of ``source`` (same world): what a faithful load has."""
    if source not in _CLEAN:
        monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "clean-dlt"))
        clean = Warehouse(tmp_path / "clean.duckdb")
        result = clean.run(source)
        assert result.sources[0].status == "loaded", result.sources[0].message
        _CLEAN[source] = table_counts(clean, source)
        monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt"))
    return _CLEAN[source]


def table_counts(wh: Warehouse, source: str) -> dict[str, int]:
    return {t: wh.scalar(f'select count(*) from {source}."{t}"') for t in wh.tables(source) if not t.startswith("_dlt")}


def rows(counts: dict[str, int], table: str) -> int:
    return sum(counts.get(t, 0) for t in table.split("+"))


def apply(sandbox, rule: dict[str, Any]) -> None:
    rule = dict(rule)
    if "fault" in rule:
        sandbox.add_fault(rule.pop("fault"), **rule)
    else:
        sandbox.corrupt(api=rule.pop("api", "*"), **rule)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_data_is_loaded_faithfully_or_rejected_loudly(case: Case, sandbox, small_warehouse, tmp_path, monkeypatch, long_mode):
    if case.id not in QUICK and not long_mode:
        pytest.skip("--long")
    wh = small_warehouse
    clean = clean_counts(case.source, sandbox, tmp_path, monkeypatch)
    apply(sandbox, {"api": case.source, **case.rule})
    result = wh.run(case.source).sources[0]
    skipped = result.requests.get("skipped_entities", 0)
    details = " | ".join(f"{s.get('endpoint')} {s.get('detail')}" for s in result.requests.get("skipped", []))
    outcome = "failed" if result.status == "failed" else "skipped" if skipped else result.status
    print(f"{case.id}: {outcome}: {result.message} {details}")
    assert outcome == case.outcome, f"{result.status}: {result.message} {details}"
    if outcome == "failed":
        # Loud: source, endpoint and what was wrong, on one line (ops.runs.error).
        assert case.source in result.message and "GET /" in result.message, result.message
        for word in case.names:
            assert word in result.message, result.message
        # Nothing lost: once the vendor sends good data again, the next run loads it all.
        sandbox.clear_corruptions()
        sandbox.clear_faults()
        again = wh.run(case.source).sources[0]
        assert again.status == "loaded", again.message
        assert table_counts(wh, case.source) == clean
        return
    counts = table_counts(wh, case.source)
    if outcome == "skipped":
        # Counted and named (the endpoint, or the resource reading it), and the rows around it are there.
        assert "GET /" in details or "resource " in details, details
        for word in case.names:
            assert word in details, details
        assert rows(counts, case.table) == rows(clean, case.table) - skipped
        assert rows(counts, case.table) > 0
        return
    # Loaded faithfully: every row, the odd value as sent.
    assert rows(counts, case.table) == rows(clean, case.table)
    if case.stored:
        params = [UNICODE] if "?" in case.stored else None
        assert wh.scalar(case.stored, params) >= 1, case.stored


def test_unknown_fields_are_reported_as_schema_changes(sandbox, small_warehouse):
    """A new field is not a silent change: ops.runs.schema_changes names the column."""
    sandbox.corrupt("brand_new_metric", value=1, api="listenloop", where="id")
    result = small_warehouse.run("listenloop").sources[0]
    assert result.status == "loaded"
    assert any("brand_new_metric" in c for cols in result.schema_changes.values() for c in cols), result.schema_changes


CURSOR_CASES = [
    ("retreaver", {"field": "updated_at", "value": "2100-01-01T00:00:00.000Z", "where": "uuid", "count": 1, "path_contains": "calls"}),
    ("marin_social", {"field": "date", "value": "2100-01-01", "where": "date", "count": 1, "path_contains": "/statistics"}),
]


@pytest.mark.parametrize("source,rule", CURSOR_CASES, ids=[c[0] for c in CURSOR_CASES])
def test_a_date_in_2100_never_becomes_a_cursor(source, rule, sandbox, small_warehouse):
    """Found by this suite: one call stamped 2100 moved Retreaver's calls cursor to
    2100, and every later run loaded no new call, silently. Now such a row is skipped
    and counted (calls), or loaded as sent without moving the cursor (statistics)."""
    sandbox.corrupt(api=source, **rule)
    first = small_warehouse.run(source).sources[0]
    assert first.status == "loaded", first.message
    assert "2100" not in str(first.cursor_after), first.cursor_after
    sandbox.clear_corruptions()
    sandbox.advance(2)
    second = small_warehouse.run(source).sources[0]
    assert second.status == "loaded" and "2100" not in str(second.cursor_after)
    if source == "retreaver":
        truth = sandbox.truth("retreaver")["retreaver"]["calls"]["count"]
        assert small_warehouse.scalar("select count(*) from retreaver.calls") == truth
        assert first.requests["skipped_entities"] == 1 and "updated_at" in first.requests["skipped"][0]["detail"]
    else:
        # New days after the advance arrived: the plan's window did not jump to 2100.
        assert any(n > 0 for t, n in second.rows.items() if t.endswith("stats_daily")), second.rows
