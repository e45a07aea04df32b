"""The dbt build (pipelines/dbt.py) on small projects of its own: layering, stand-ins
for what is not loaded, tests and their samples, failures named, old marts kept,
seeds, selection, and the generated profile keeping the password out of files."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import dlt
import duckdb
import pytest

from pipelines.dbt import MissingRawTables, TransformError, build, dbt_profile
from transforms import TRANSFORMS_DIR

SOURCES = """version: 2
sources:
  - name: shop
    tables: [{name: orders}, {name: refunds}]
"""
STAGING = "with source as (select * from {{ raw_table('shop', 'orders') }}) select id, amount from source"
INTERMEDIATE = "select id, amount * 2 as doubled from {{ ref('stg_shop__orders') }}"
MART = "select count(*) as n, sum(doubled) as total, max(r.rate) as rate from {{ ref('int_doubled') }}, {{ ref('rates') }} as r"
DECLARED = {
    "shop.orders": {"id": {"data_type": "bigint"}, "amount": {"data_type": "bigint"}, "coupon": {"data_type": "text"}},
    "shop.refunds": {"id": {"data_type": "bigint"}, "refunded_at": {"data_type": "timestamp"}, "amount": {"data_type": "decimal"}},
}


def project(root: Path, files: dict[str, str]) -> Path:
    """Our dbt_project.yml and macros, the shop's sources, and ``files``."""
    shutil.copytree(TRANSFORMS_DIR / "macros", root / "macros")
    shutil.copy(TRANSFORMS_DIR / "dbt_project.yml", root / "dbt_project.yml")
    for rel, text in {"models/staging/_sources.yml": SOURCES, **files}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture
def pipeline(tmp_path, monkeypatch):
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt"))
    monkeypatch.setattr("pipelines.dbt.declared_columns", lambda: DECLARED)
    db = tmp_path / "w.duckdb"
    p = dlt.pipeline("shop", destination=dlt.destinations.duckdb(str(db)), dataset_name="shop")
    p.run([{"id": 1, "amount": 5}, {"id": 2, "amount": 7}], table_name="orders")
    return p


def query(pipeline, sql: str) -> list[tuple]:
    with duckdb.connect(pipeline.destination_client().config.credentials.database, read_only=True) as con:
        return con.execute(sql).fetchall()


def test_build_creates_views_tables_and_runs_data_tests_with_their_offending_rows(tmp_path, pipeline):
    root = project(
        tmp_path / "t",
        {
            "models/staging/stg_shop__orders.sql": STAGING,
            "models/intermediate/int_doubled.sql": INTERMEDIATE,
            "models/marts/total.sql": MART,
            "seeds/rates.csv": "currency_code,rate\nEUR,1.08\n",
            "tests/total_is_24.sql": "select * from {{ ref('total') }} where total <> 24",
            "tests/no_orders_over_6.sql": "select id from {{ ref('stg_shop__orders') }} where amount > 6",
        },
    )
    results = {r.name: r for r in build(pipeline, root).tests}
    assert results["total_is_24"].ok
    assert not results["no_orders_over_6"].ok
    assert results["no_orders_over_6"].sample == [(2,)]
    assert query(pipeline, "select n, total from marts.total") == [(2, 24)]
    kinds = dict(query(pipeline, "select table_schema || '.' || table_name, table_type from information_schema.tables"))
    assert kinds["staging.stg_shop__orders"] == "VIEW" and kinds["intermediate.int_doubled"] == "VIEW"
    assert kinds["marts.total"] == "BASE TABLE" and kinds["seeds.rates"] == "BASE TABLE"
    assert not [k for k in kinds if "__dbt" in k]  # no build-aside leftovers


def test_only_staging_models_may_read_raw_tables(tmp_path, pipeline):
    root = project(tmp_path / "t", {"models/marts/bad.sql": "select * from {{ source('shop', 'orders') }}"})
    with pytest.raises(TransformError, match=r"models/marts/bad.sql: only staging models may read raw tables, found \['shop.orders'\]"):
        build(pipeline, root)


def test_a_reference_to_no_model_and_a_cycle_are_named(tmp_path, pipeline):
    root = project(tmp_path / "a", {"models/marts/x.sql": "select * from {{ ref('nothing') }}"})
    with pytest.raises(TransformError, match="nothing"):
        build(pipeline, root)
    cycle = {"models/intermediate/p.sql": "select * from {{ ref('q') }}", "models/intermediate/q.sql": "select * from {{ ref('p') }}"}
    with pytest.raises(TransformError, match="cycle"):
        build(pipeline, project(tmp_path / "b", cycle))


def test_a_broken_model_names_its_file_and_keeps_the_old_mart(tmp_path, pipeline):
    files = {"models/staging/stg_shop__orders.sql": STAGING, "models/marts/total.sql": "select count(*) as n from {{ ref('stg_shop__orders') }}"}
    root = project(tmp_path / "t", files)
    build(pipeline, root)
    (root / "models/marts/total.sql").write_text("select no_such_column from {{ ref('stg_shop__orders') }}")
    with pytest.raises(TransformError, match="models/marts/total.sql: .*no_such_column"):
        build(pipeline, root)
    assert query(pipeline, "select n from marts.total") == [(2,)]


def test_models_build_under_the_transform_memory_cap_and_running_out_names_the_setting(tmp_path, pipeline, monkeypatch):
    """dbt's DuckDB connection gets the transforms' cap (160 MB) and one thread, not
    DuckDB's 80 % of RAM; a model that needs more fails naming the cap and its setting."""
    settings = "select current_setting('memory_limit') as cap, current_setting('threads') as threads, current_setting('preserve_insertion_order') as ordered"
    root = project(tmp_path / "t", {"models/marts/settings.sql": settings})
    build(pipeline, root)
    assert query(pipeline, "select cap, threads, ordered from marts.settings") == [("152.5 MiB", 1, False)]

    # string_agg holds its whole result in memory: ~20 MB cannot fit under 8 MB.
    big = "select max(length(s)) as n from (select string_agg(i::varchar, ',') as s from range(3000000) as t(i))"
    (root / "models/marts/big.sql").write_text(big)
    monkeypatch.setenv("WAREHOUSE__DUCKDB_TRANSFORM_MEMORY_LIMIT", "8MB")
    with pytest.raises(TransformError, match=r"models/marts/big.sql: .*Out of Memory.*cap for the transform step is 8MB: raise it with WAREHOUSE__DUCKDB_TRANSFORM_MEMORY_LIMIT"):
        build(pipeline, root)
    monkeypatch.delenv("WAREHOUSE__DUCKDB_TRANSFORM_MEMORY_LIMIT")
    build(pipeline, root)
    assert query(pipeline, "select n from marts.big") == [(22888889,)]


def test_a_failing_data_test_that_cannot_run_is_named(tmp_path, pipeline):
    root = project(tmp_path / "t", {"models/staging/stg_shop__orders.sql": STAGING, "tests/broken.sql": "select nope from {{ ref('stg_shop__orders') }}"})
    with pytest.raises(TransformError, match="tests/broken.sql"):
        build(pipeline, root)


def test_absent_raw_tables_and_columns_read_as_typed_stand_ins(tmp_path, pipeline):
    """A source not configured (no raw table) and a field never sent (no column) still
    build: the staging model reads a typed, empty or NULL, stand-in."""
    root = project(
        tmp_path / "t",
        {
            "models/staging/stg_shop__orders.sql": "with source as (select * from {{ raw_table('shop', 'orders') }}) select id, amount, coupon from source",
            "models/staging/stg_shop__refunds.sql": "with source as (select * from {{ raw_table('shop', 'refunds') }}) select id, refunded_at, amount from source",
            "models/marts/net.sql": "select (select sum(amount) from {{ ref('stg_shop__orders') }}) - "
            "coalesce((select sum(amount) from {{ ref('stg_shop__refunds') }}), 0) as net, "
            "(select count(coupon) from {{ ref('stg_shop__orders') }}) as coupons",
        },
    )
    built = build(pipeline, root)
    assert built.coverage.absent == ["shop.refunds"]
    assert built.coverage.filled == {"shop.orders": ["coupon"]}
    assert built.coverage.absent_sources == ["shop"]
    assert query(pipeline, "select net, coupons from marts.net") == [(12, 0)]
    types = dict(query(pipeline, "select column_name, data_type from information_schema.columns where table_name = 'stg_shop__refunds'"))
    assert types == {"id": "BIGINT", "refunded_at": "TIMESTAMP WITH TIME ZONE", "amount": "DECIMAL(38,9)"}


def test_a_loaded_raw_table_is_read_even_when_dbts_relation_cache_misses_it(tmp_path, pipeline, monkeypatch):
    """dbt's relation cache, filled by one thread while another asks (Postgres builds
    on 4 threads), can answer "no such relation" for a loaded raw table: the build
    must not then read it as absent and leave its rows out of the marts."""
    from dbt.adapters.base.impl import BaseAdapter

    real = BaseAdapter.get_relation

    def cache_misses_raw_schemas(self, database, schema, identifier):
        return None if schema == "shop" else real(self, database, schema, identifier)

    monkeypatch.setattr(BaseAdapter, "get_relation", cache_misses_raw_schemas)
    root = project(
        tmp_path / "t",
        {
            "models/staging/stg_shop__orders.sql": "with source as (select * from {{ raw_table('shop', 'orders') }}) select id, amount, coupon from source",
            "models/marts/total.sql": "select sum(amount) as total, count(coupon) as coupons from {{ ref('stg_shop__orders') }}",
        },
    )
    built = build(pipeline, root)
    assert built.coverage.absent == ["shop.refunds"]
    assert query(pipeline, "select total, coupons from marts.total") == [(12, 0)]


def test_no_raw_table_at_all_is_nothing_to_build(tmp_path, pipeline):
    root = project(tmp_path / "t", {"models/staging/_sources.yml": "version: 2\nsources:\n  - name: void\n    tables: [{name: things}]\n"})
    with pytest.raises(MissingRawTables, match="no raw tables loaded yet"):
        build(pipeline, root)


def test_a_seed_emptied_to_its_header_is_an_empty_table_not_yesterdays_rows(tmp_path, pipeline):
    files = {
        "models/staging/stg_shop__orders.sql": STAGING,
        "models/marts/mapped.sql": "select count(*) as n from {{ ref('campaign_map') }}",
        "seeds/campaign_map.csv": "utm_campaign,platform,campaign_id\nspring,marin_social,1\n",
    }
    root = project(tmp_path / "t", files)
    build(pipeline, root)
    assert query(pipeline, "select n from marts.mapped") == [(1,)]
    (root / "seeds/campaign_map.csv").write_text("utm_campaign,platform,campaign_id\n")
    build(pipeline, root)
    assert query(pipeline, "select n from marts.mapped") == [(0,)]


def test_select_builds_and_tests_only_what_it_names(tmp_path, pipeline):
    files = {
        "models/staging/stg_shop__orders.sql": STAGING,
        "models/marts/one.sql": "select count(*) as n from {{ ref('stg_shop__orders') }}",
        "models/marts/two.sql": "select count(*) as n from {{ ref('stg_shop__orders') }}",
        "tests/two_is_empty.sql": "select * from {{ ref('two') }} where n > 0",
    }
    root = project(tmp_path / "t", files)
    built = build(pipeline, root, select="+one")
    assert built.tests == []  # the test of `two` is not selected
    tables = {r[0] for r in query(pipeline, "select table_name from information_schema.tables where table_schema = 'marts'")}
    assert tables == {"one"}
    assert [t.name for t in build(pipeline, root, select="two").tests if not t.ok] == ["two_is_empty"]


def test_the_profile_names_the_password_only_as_an_environment_variable(tmp_path, monkeypatch):
    """No second place for credentials, and none in files: the generated profile
    takes host, user and database from dlt's configuration and reads the password
    from an environment variable dbt masks (DBT_ENV_SECRET_*), set only meanwhile."""
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt"))
    secret = "s3cret-sentinel-pw"
    url = f"postgresql://analyst:{secret}@db.example.invalid:6543/marketing"
    p = dlt.pipeline("profile", destination=dlt.destinations.postgres(credentials=url), dataset_name="marts")
    with dbt_profile(p) as directory:
        text = (directory / "profiles.yml").read_text()
        assert secret not in text
        assert 'env_var("DBT_ENV_SECRET_WAREHOUSE_PASSWORD")' in text
        assert "db.example.invalid" in text and "analyst" in text and "6543" in text and "marketing" in text
        assert os.environ["DBT_ENV_SECRET_WAREHOUSE_PASSWORD"] == secret
    assert not directory.exists()
    assert "DBT_ENV_SECRET_WAREHOUSE_PASSWORD" not in os.environ


def test_the_cli_passes_select_through_exits_4_naming_the_failing_test_and_publishes_nothing(tmp_path):
    """`marketing-etl transform --select` on a warehouse with Retreaver's daily report
    alone (every other raw table stands in empty): an old report day no call backs
    fails reconciliation_ties_out; the run exits 4 naming it, ops.runs records
    tests_failed, and no serving file is published."""
    import json
    import subprocess
    import sys

    db = tmp_path / "w.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("create schema retreaver")
        con.execute(
            "create table retreaver.report_daily (day date, total_calls bigint, converted_count double,"
            " revenue decimal(18,6), payout decimal(18,6), cost decimal(18,6))"
        )
        con.execute("insert into retreaver.report_daily values ('2025-03-01', 5, 0, 0, 0, 0), ('2025-03-20', 0, 0, 0, 0, 0)")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "TRANSFORMS__", "WAREHOUSE__", "DESTINATION__"))}
    env["DLT_DATA_DIR"] = str(tmp_path / "dlt")
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "transform", "--select", "+reconciliation", "--warehouse", str(db), "--json"],
        capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path,
    )
    assert done.returncode == 4, done.stdout + done.stderr
    assert "data test reconciliation_ties_out: 1 offending rows" in done.stderr
    (row,) = json.loads(done.stdout)["runs"]
    assert (row["source"], row["status"]) == ("transforms", "tests_failed")
    assert "reconciliation_ties_out (1 rows)" in row["error"]
    assert not (tmp_path / "w.serving.duckdb").exists()
    with duckdb.connect(str(db), read_only=True) as con:
        built = {r[0] for r in con.execute("select table_name from information_schema.tables where table_schema = 'marts'").fetchall()}
        assert con.execute("select status from ops.runs").fetchall() == [("tests_failed",)]
    # +reconciliation: the marts it is built from, not the others.
    assert built == {"reconciliation", "spend_daily", "call_conversions"}


def test_dbt_docs_generate_works_offline_and_shows_the_lineage(tmp_path, monkeypatch):
    """`marketing-etl dbt docs generate` on our project and a warehouse with no raw
    table yet (every source stands in empty): the docs site, its catalog, and the
    lineage from raw tables to the dashboard mart."""
    import json

    from pipelines.dbt import run_dbt

    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt"))
    p = dlt.pipeline("docs", destination=dlt.destinations.duckdb(str(tmp_path / "w.duckdb")), dataset_name="marts")
    assert run_dbt(p, ["docs", "generate", "--target-path", str(tmp_path / "site")]) == 0
    assert (tmp_path / "site" / "index.html").stat().st_size > 0
    catalog = json.loads((tmp_path / "site" / "catalog.json").read_text())
    assert catalog["nodes"] == {}  # nothing built here yet: the catalog lists what the warehouse holds
    manifest = json.loads((tmp_path / "site" / "manifest.json").read_text())
    parents = manifest["parent_map"]
    assert set(parents["model.marketing_etl.marketing_daily"]) >= {"model.marketing_etl.spend_daily", "model.marketing_etl.conversions_daily"}
    assert parents["model.marketing_etl.stg_retreaver__calls"] == ["source.marketing_etl.retreaver.calls"]
    described = manifest["nodes"]["model.marketing_etl.spend_daily"]["columns"]
    assert described["spend"]["description"]


# One process's build of the shop project with JSON_SCHEMAS under XDG_CACHE_HOME:
# what it built and what the file then holds; and, before the build, whether the
# schemas read back equal dbt's own builds of them.
SCHEMA_RUN = """
import importlib, json, sys
from pathlib import Path
import dlt
import pipelines.dbt as dbt_module
from tests.transforms.test_dbt import DECLARED, INTERMEDIATE, STAGING, project

work, name = Path(sys.argv[1]), sys.argv[2]
file = dbt_module.JSON_SCHEMAS.path
try:
    kept = json.loads(file.read_text())
except (OSError, ValueError):
    kept = {}
from dbt_common.dataclass_schema import dbtClassMixin

def dbt_own(key):
    module, _, qualname = key.partition(":")
    cls = importlib.import_module(module)
    for part in qualname.split("."):
        cls = getattr(cls, part)
    return json.loads(json.dumps(dbtClassMixin.json_schema.__func__(cls)))

differ = sorted(key for key, schema in kept.items() if dbt_own(key) != schema)
dbt_module.declared_columns = lambda: DECLARED
root = project(work / ("t" + name), {"models/staging/stg_shop__orders.sql": STAGING, "models/intermediate/int_doubled.sql": INTERMEDIATE})
p = dlt.pipeline("shop" + name, pipelines_dir=str(work / "dlt"), destination=dlt.destinations.duckdb(str(work / (name + ".duckdb"))), dataset_name="shop")
p.run([{"id": 1, "amount": 5}, {"id": 2, "amount": 7}], table_name="orders")
dbt_module.build(p, root, run_tests=False)
with p.sql_client() as client:
    doubled = client.execute_sql("select sum(doubled) from intermediate.int_doubled")[0][0]
print(json.dumps({"read": len(kept), "differ": differ, "built": dbt_module.JSON_SCHEMAS.built,
                  "kept": len(json.loads(file.read_text())), "doubled": int(doubled)}))
"""


def test_dbts_json_schemas_are_kept_for_the_next_process_and_equal_dbts_own(tmp_path):
    import json
    import subprocess
    import sys

    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}

    def run(name: str) -> dict:
        done = subprocess.run(  # from the repository root: the script imports this module
            [sys.executable, "-c", SCHEMA_RUN, str(tmp_path), name], capture_output=True, text=True, env=env, timeout=300,
            cwd=Path(__file__).resolve().parents[2],
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    # No file: every schema is built as dbt builds it, and all are written.
    first = run("a")
    assert first["read"] == 0 and first["built"] >= 10 and first["kept"] == first["built"] and first["doubled"] == 24
    [file] = (tmp_path / "cache" / "marketing-etl").glob("dbt-json-schemas-*.json")
    # The next process reads them back (each equal to dbt's own), builds none, and
    # its build is the same.
    second = run("b")
    assert second == {"read": first["kept"], "differ": [], "built": 0, "kept": first["kept"], "doubled": 24}
    # A file that is not JSON reads as none: built again, and written whole again.
    file.write_text("{not json")
    third = run("c")
    assert third["read"] == 0 and third["built"] == first["built"] and third["kept"] == first["kept"] and third["doubled"] == 24


def test_an_unwritable_schema_cache_is_left_alone(tmp_path):
    from pipelines.dbt import JsonSchemaCache

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    cache = JsonSchemaCache(directory=blocker / "marketing-etl")  # under a file: cannot be made
    cache.schemas, cache.unsaved = {"x:Y": {"type": "object"}}, True
    cache.save()
    assert not cache.unsaved and list(tmp_path.iterdir()) == [blocker]
