"""The SQL model runner: discovery, dependency order, layering rules, build, tests."""

from __future__ import annotations

from pathlib import Path

import dlt
import duckdb
import pytest

from transforms.runner import MissingRawTables, TransformError, build, discover, referenced_tables


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


STAGING = "with source as (select * from shop.orders) select id, amount from source"
INTERMEDIATE = "select id, amount * 2 as doubled from staging.stg_shop__orders"
MART = "select count(*) as n, sum(doubled) as total, max(r.rate) as rate from intermediate.int_doubled, seeds.rates as r"


def test_referenced_tables_skips_ctes():
    assert referenced_tables("with a as (select * from x.y) select * from a join z.w using (id)") == {"x.y", "z.w"}


def test_models_are_ordered_by_what_they_read(tmp_path):
    root = write(
        tmp_path,
        {
            "marts/total.sql": MART,
            "intermediate/int_doubled.sql": INTERMEDIATE,
            "staging/stg_shop__orders.sql": STAGING,
        },
    )
    assert [m.qualified for m in discover(root)] == ["staging.stg_shop__orders", "intermediate.int_doubled", "marts.total"]


def test_only_staging_may_read_raw_tables(tmp_path):
    root = write(tmp_path, {"marts/bad.sql": "select * from shop.orders"})
    with pytest.raises(TransformError, match="marts/bad.sql: only staging models may read raw tables"):
        discover(root)


def test_unknown_model_and_cycles_are_reported(tmp_path):
    root = write(tmp_path / "a", {"marts/x.sql": "select * from intermediate.nothing"})
    with pytest.raises(TransformError, match="unknown models"):
        discover(root)
    root = write(tmp_path / "b", {"intermediate/p.sql": "select * from intermediate.q", "intermediate/q.sql": "select * from intermediate.p"})
    with pytest.raises(TransformError, match="cycle"):
        discover(root)


@pytest.fixture
def pipeline(tmp_path, monkeypatch):
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt"))
    db = tmp_path / "w.duckdb"
    p = dlt.pipeline("shop", destination=dlt.destinations.duckdb(str(db)), dataset_name="shop")
    p.run([{"id": 1, "amount": 5}, {"id": 2, "amount": 7}], table_name="orders")
    return p


def test_build_creates_views_tables_and_runs_data_tests(tmp_path, pipeline):
    root = write(
        tmp_path / "t",
        {
            "staging/stg_shop__orders.sql": STAGING,
            "intermediate/int_doubled.sql": INTERMEDIATE,
            "marts/total.sql": MART,
            "seeds/rates.csv": "currency_code,rate\nEUR,1.08\n",
            "tests/total_is_24.sql": "select * from marts.total where total <> 24",
            "tests/no_orders_over_6.sql": "select id from staging.stg_shop__orders where amount > 6",
        },
    )
    results = {r.name: r for r in build(pipeline, root).tests}
    assert results["total_is_24"].ok
    assert not results["no_orders_over_6"].ok
    assert results["no_orders_over_6"].sample == [(2,)]
    with duckdb.connect(pipeline.destination_client().config.credentials.database, read_only=True) as con:
        assert con.execute("select n, total, rate from marts.total").fetchall()[0][:2] == (2, 24)
        kinds = dict(con.execute("select table_schema || '.' || table_name, table_type from information_schema.tables").fetchall())
    assert kinds["staging.stg_shop__orders"] == "VIEW"
    assert kinds["marts.total"] == "BASE TABLE"
    assert "marts.total__building" not in kinds


def test_a_broken_model_names_its_file_and_keeps_the_old_mart(tmp_path, pipeline):
    root = write(tmp_path / "t", {"staging/stg_shop__orders.sql": STAGING, "marts/total.sql": "select count(*) as n from staging.stg_shop__orders"})
    build(pipeline, root)
    (root / "marts/total.sql").write_text("select no_such_column from staging.stg_shop__orders")
    with pytest.raises(TransformError, match="marts/total.sql"):
        build(pipeline, root)
    with duckdb.connect(pipeline.destination_client().config.credentials.database, read_only=True) as con:
        assert con.execute("select n from marts.total").fetchone() == (2,)


def test_absent_raw_tables_and_columns_read_as_typed_stand_ins(tmp_path, pipeline, monkeypatch):
    """A source not configured (no raw table) and a field never sent (no column) still
    build: the staging model reads a typed, empty or NULL, stand-in."""
    declared = {
        "shop.orders": {"id": {"data_type": "bigint"}, "amount": {"data_type": "bigint"}, "coupon": {"data_type": "text"}},
        "shop.refunds": {"id": {"data_type": "bigint"}, "refunded_at": {"data_type": "timestamp"}, "amount": {"data_type": "decimal"}},
    }
    monkeypatch.setattr("transforms.runner.declared_columns", lambda: declared)
    root = write(
        tmp_path / "t",
        {
            "staging/stg_shop__orders.sql": "with source as (select * from shop.orders) select id, amount, coupon from source",
            "staging/stg_shop__refunds.sql": "with source as (select * from shop.refunds) select id, refunded_at, amount from source",
            "marts/net.sql": "select (select sum(amount) from staging.stg_shop__orders) - "
            "coalesce((select sum(amount) from staging.stg_shop__refunds), 0) as net, "
            "(select count(coupon) from staging.stg_shop__orders) as coupons",
        },
    )
    built = build(pipeline, root)
    assert built.coverage.absent == ["shop.refunds"]
    assert built.coverage.filled == {"shop.orders": ["coupon"]}
    assert built.coverage.absent_sources == ["shop"]
    with duckdb.connect(pipeline.destination_client().config.credentials.database, read_only=True) as con:
        assert con.execute("select net, coupons from marts.net").fetchone() == (12, 0)
        types = dict(con.execute("select column_name, data_type from information_schema.columns where table_name = 'stg_shop__refunds'").fetchall())
    assert types == {"id": "BIGINT", "refunded_at": "TIMESTAMP WITH TIME ZONE", "amount": "DECIMAL(38,9)"}


def test_no_raw_table_at_all_is_nothing_to_build(tmp_path, pipeline, monkeypatch):
    monkeypatch.setattr("transforms.runner.declared_columns", lambda: {"void.things": {"id": {"data_type": "bigint"}}})
    root = write(tmp_path / "t", {"staging/stg_void__things.sql": "select id from void.things"})
    with pytest.raises(MissingRawTables, match="no raw tables loaded yet"):
        build(pipeline, root)


def test_a_seed_emptied_to_its_header_is_an_empty_table_not_yesterdays_rows(tmp_path, pipeline):
    files = {
        "staging/stg_shop__orders.sql": STAGING,
        "marts/mapped.sql": "select count(*) as n from seeds.campaign_map",
        "seeds/campaign_map.csv": "utm_campaign,platform,campaign_id\nspring,marin_social,1\n",
    }
    root = write(tmp_path / "t", files)
    build(pipeline, root)
    (root / "seeds/campaign_map.csv").write_text("utm_campaign,platform,campaign_id\n")
    build(pipeline, root)
    with duckdb.connect(pipeline.destination_client().config.credentials.database, read_only=True) as con:
        assert con.execute("select n from marts.mapped").fetchone() == (0,)
