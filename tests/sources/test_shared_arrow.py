"""sources/_shared/arrow.py: dict rows handed to dlt as Arrow tables typed by the
declared columns, batch by batch, without losing a row at a closed walk."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import dlt
import duckdb
import pyarrow as pa
import pytest

import pipelines.warehouse  # noqa: F401 - the project's dlt settings (row ids on Arrow tables)
from sources._shared.arrow import ArrowPages, NotArrow, rows_to_arrow

COLUMNS: dict[str, Any] = {
    "id": {"data_type": "text"},
    "n": {"data_type": "bigint"},
    "ok": {"data_type": "bool"},
    "money": {"data_type": "decimal", "precision": 18, "scale": 6},
    "at": {"data_type": "timestamp", "timezone": True},
    "day": {"data_type": "date"},
    "extra": {"data_type": "json"},
}


def test_values_are_typed_by_their_declared_columns():
    table = rows_to_arrow(
        [
            {"id": "a", "n": 1, "ok": True, "money": Decimal("12.34"), "at": "2026-11-02T10:00:00.123Z", "day": "2026-11-02", "extra": {"k": [1, 2]}},
            {"id": "b", "n": None, "ok": None, "money": None, "at": datetime(2026, 11, 2, 12, tzinfo=UTC), "day": None, "extra": []},
            {"id": "c", "never_set": None},
        ],
        COLUMNS,
    )
    assert table.schema.field("n").type == pa.int64()
    assert table.schema.field("money").type == pa.decimal128(18, 6)
    assert table.schema.field("at").type == pa.timestamp("us", tz="UTC")
    assert "never_set" not in table.column_names  # null everywhere and undeclared: no column, as with dicts
    rows = table.to_pylist()
    assert rows[0]["at"] == datetime(2026, 11, 2, 10, 0, 0, 123000, tzinfo=UTC)
    assert rows[0]["money"] == Decimal("12.34")
    assert rows[0]["extra"] == '{"k":[1,2]}' and rows[1]["extra"] == "[]"
    assert rows[2]["at"] is None and rows[2]["n"] is None


@pytest.mark.parametrize(
    "row",
    [
        {"id": "a", "new_field": 1},  # a field nobody declared: dlt infers it
        {"id": "a", "n": "12"},  # a string in a bigint column
        {"id": "a", "n": True},
        {"id": "a", "money": 1.5},  # floats are money only through to_decimal
        {"id": "a", "money": Decimal("1.1234567")},  # more places than the column keeps
        {"id": "a", "at": "2026-11-02T10:00:00"},  # no offset: dlt's reading applies
        {"id": "a", "at": "yesterday"},
        {"id": "a", "extra": "text"},
        {"id": "a", "day": datetime(2026, 11, 2, tzinfo=UTC)},
    ],
)
@pytest.mark.parametrize("beside", ["another shape", "the same keys"])
def test_a_value_that_does_not_fit_its_column_exactly_keeps_the_batch_as_dicts(row, beside):
    with pytest.raises(NotArrow):
        rows_to_arrow([{"id": "z", "n": 1} if beside == "another shape" else row, row], COLUMNS)


def test_rows_give_one_table_whatever_their_keys_order_or_gaps():
    """Rows with the same keys in the same order take a faster path than rows whose
    keys differ or come in another order: both give the same table."""
    same = [
        {"id": "a", "n": 1, "at": "2026-11-02T10:00:00Z", "extra": {"k": 1}},
        {"id": "b", "n": None, "at": "2026-11-02T11:00:00-04:00", "extra": None},
    ]
    reordered = [same[0], dict(reversed(list(same[1].items())))]
    gap = [same[0], {"id": "b", "at": "2026-11-02T11:00:00-04:00"}]
    expected = rows_to_arrow(same, COLUMNS).to_pylist()
    assert expected[1] == {"id": "b", "n": None, "at": datetime(2026, 11, 2, 15, tzinfo=UTC), "extra": None}
    assert rows_to_arrow(reordered, COLUMNS).select(["id", "n", "at", "extra"]).to_pylist() == expected
    assert rows_to_arrow(gap, COLUMNS).select(["id", "n", "at", "extra"]).to_pylist() == expected


def pages(pulled: list[int], pages_of_rows: list[list[dict[str, Any]]]):
    def walk():
        for number, page in enumerate(pages_of_rows, start=1):
            pulled.append(number)
            yield page
        pulled.append(0)  # the empty page that ends a walk
        yield []

    return walk


def load(tmp_path: Any, name: str, resource: Any) -> duckdb.DuckDBPyConnection:
    pipeline = dlt.pipeline(
        name, pipelines_dir=str(tmp_path / "dlt"), destination=dlt.destinations.duckdb(str(tmp_path / f"{name}.duckdb")), dataset_name="raw"
    )
    pipeline.run(resource, loader_file_format="parquet")
    return duckdb.connect(str(tmp_path / f"{name}.duckdb"), read_only=True)


def descending_rows(count: int) -> list[dict[str, Any]]:
    base = datetime(2026, 11, 2, tzinfo=UTC).timestamp()
    return [
        {"id": f"r{i:04d}", "n": i, "money": Decimal(i) / 100, "at": datetime.fromtimestamp(base - 60 * i, UTC).isoformat().replace("+00:00", "Z")}
        for i in range(count)
    ]


@pytest.mark.parametrize("arrow", [True, False])
def test_a_walk_closed_at_the_cursor_hands_on_every_row_it_kept_and_asks_nothing_more(tmp_path, arrow):
    """dlt's incremental closes the walk on the page that reaches the cursor; that page
    (and the batch held before it) still arrives, no further page is pulled, and the
    rows are those the dict path loads."""
    rows = descending_rows(1_000)
    cursor = rows[655]["at"]  # inside page 7 of 10
    pulled: list[int] = []
    resource = dlt.resource(
        pages(pulled, [rows[i : i + 100] for i in range(0, 1_000, 100)]),
        name="things",
        primary_key="id",
        write_disposition="merge",
        columns=COLUMNS,
    )
    resource.apply_hints(incremental=dlt.sources.incremental("at", initial_value=cursor, row_order="desc"))
    steps = ArrowPages("test", "GET /things", COLUMNS, batch_rows=250)
    if arrow:
        resource.add_step(steps)
    con = load(tmp_path, "closed", resource)
    assert pulled == [1, 2, 3, 4, 5, 6, 7]
    assert con.execute("select count(*), count(distinct id), min(n), max(n), sum(money) from raw.things").fetchone() == (
        656, 656, 0, 655, sum(Decimal(i) / 100 for i in range(656)),
    )
    assert con.execute("select count(distinct _dlt_id), count(_dlt_load_id) from raw.things").fetchone() == (656, 656)
    assert steps.batches == ({"arrow": 3, "dicts": 0} if arrow else {"arrow": 0, "dicts": 0})


def test_a_walk_to_its_empty_page_hands_on_the_last_short_batch(tmp_path):
    pulled: list[int] = []
    rows = descending_rows(530)
    resource = dlt.resource(pages(pulled, [rows[i : i + 100] for i in range(0, 530, 100)]), name="things", primary_key="id", columns=COLUMNS)
    steps = ArrowPages("test", "GET /things", COLUMNS, batch_rows=200)
    resource.add_step(steps)
    con = load(tmp_path, "ended", resource)
    assert pulled == [1, 2, 3, 4, 5, 6, 0]
    assert con.execute("select count(*), count(distinct id) from raw.things").fetchone() == (530, 530)
    assert steps.batches == {"arrow": 3, "dicts": 0}


def test_a_batch_that_cannot_be_arrow_loads_as_dict_rows_beside_the_arrow_ones(tmp_path):
    rows = descending_rows(300)
    rows[250]["surprise"] = "a field the vendor added"
    rows[260]["n"] = "12"  # dlt coerces it, as it always did
    resource = dlt.resource(pages([], [rows[i : i + 100] for i in range(0, 300, 100)]), name="things", primary_key="id", columns=COLUMNS)
    steps = ArrowPages("test", "GET /things", COLUMNS, batch_rows=200)
    resource.add_step(steps)
    con = load(tmp_path, "mixed", resource)
    assert steps.batches == {"arrow": 1, "dicts": 1}
    assert con.execute("select count(*), count(surprise), sum(n) from raw.things").fetchone() == (300, 1, sum(range(300)) - 260 + 12)
    types = dict(con.execute("select column_name, data_type from information_schema.columns where table_name = 'things'").fetchall())
    assert types["n"] == "BIGINT" and types["money"] == "DECIMAL(18,6)" and types["at"] == "TIMESTAMP WITH TIME ZONE"
