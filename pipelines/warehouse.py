"""The warehouse connection: which dlt destination the runs load into, the pipeline
per source that loads it, and the file format each destination loads fastest.

Every command (run, backfill, status, transform, ops) reaches the warehouse through
here, so a destination configured once (``[warehouse] destination`` plus dlt's own
credentials) is the one all of them use.
"""

from __future__ import annotations

import functools
import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import dlt

# Each source's pipeline is named PIPELINE_PREFIX + source; its dataset is the source.
PIPELINE_PREFIX = "marketing_etl_"

log = logging.getLogger("marketing_etl")


# A merge loads into <dataset>_staging first; dlt leaves those rows behind unless
# told to truncate them, doubling the warehouse's size with a stale copy.
dlt.config["load.truncate_staging_dataset"] = True

# Intermediate files (extracted items, insert_values jobs) are written and read
# once, on the same machine: gzip on them was ~40 % of normalize and load time on
# call rows (docs/benchmarks.md). Parquet keeps its own compression.
dlt.config["data_writer.disable_compression"] = True
# Rows held in memory per table before a file write: dlt's 5,000 call rows (2.8 kB
# of JSON each) cost ~100 MB in extract and again in normalize; 1,000 measured no
# slower at scale 10 (docs/benchmarks.md).
dlt.config["data_writer.buffer_max_items"] = 1000
# Resources that hand dlt Arrow tables (sources/_shared/arrow.py) keep the same
# per-row columns as dict rows: the load id and a unique row id.
dlt.config["normalize.parquet_normalizer.add_dlt_load_id"] = True
dlt.config["normalize.parquet_normalizer.add_dlt_id"] = True


def destination_name() -> str:
    """``[warehouse] destination`` (env WAREHOUSE__DESTINATION): any dlt destination
    name; ``duckdb`` (the local file given by --warehouse) unless configured."""
    return str(dlt.config.get("warehouse.destination") or "duckdb")


def is_local_duckdb() -> bool:
    return destination_name() == "duckdb"


def loader_file_format() -> Any:
    """parquet where the destination loads it natively (DuckDB's insert_values loader
    is ~8x slower and uses ~15x the memory); elsewhere dlt's preferred format
    (Postgres loads insert_values or csv, not parquet)."""
    return "parquet" if destination_name() in ("duckdb", "motherduck") else None


def make_destination(warehouse: str | Path) -> Any:
    name = destination_name()
    if name == "duckdb":
        from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

        # One load job at a time (dlt runs 20): DuckDB has one writer anyway, and each
        # concurrent copy job holds its own parquet read buffers outside the cap.
        if "load.workers" not in dlt.config:
            dlt.config["load.workers"] = 1
        return _spilling_duckdb()(DuckDbCredentials(str(Path(warehouse).resolve()), global_config=duckdb_settings()))
    # Any other destination is dlt's own, configured the dlt way: credentials from
    # [destination.<name>.credentials] in secrets.toml or DESTINATION__<NAME>__CREDENTIALS.
    from dlt.common.destination import Destination

    return Destination.from_reference(name)


@functools.cache
def _spilling_duckdb() -> Any:
    """dlt's DuckDB destination with a merge that can run under a memory cap.

    dlt deduplicates a merge's staging rows with ``ROW_NUMBER() OVER (PARTITION BY
    <key>)`` over every column; DuckDB cannot spill that window, so a first load's
    merge needs the whole table in memory (Marin Social at scale 10 failed under a
    256 MB cap; measured on 1M call rows: "Out of Memory Error" at 200 MB). The same
    choice made by a GROUP BY over the key and the physical ``rowid`` alone spills,
    and keeps the row dlt keeps: the one with the highest (``dedup_sort: desc``) or
    lowest (``asc``) sort value, NULL sort values last, any row when there is no
    sort column. ``rowid`` (not ``_dlt_id``) also separates a row copied twice into
    staging by a retried load job. The SQL is dlt's own everywhere else; other
    destinations (Postgres sorts spill) keep dlt's window. Built lazily: dlt's
    destination modules load on first use.
    """
    from dlt.common.destination.reference import Destination, DestinationReference
    from dlt.destinations.impl.duckdb.duck import DuckDbClient
    from dlt.destinations.sql_jobs import SqlMergeFollowupJob

    class SpillingDedupMergeJob(SqlMergeFollowupJob):
        @classmethod
        def gen_select_from_dedup_sql(cls, table_name, primary_keys, columns, dedup_sort=None, condition=None,
                                      condition_columns=None, skip_dedup=False):  # type: ignore[no-untyped-def]
            if skip_dedup:
                return super().gen_select_from_dedup_sql(table_name, primary_keys, columns, dedup_sort, condition,
                                                         condition_columns, skip_dedup)
            if dedup_sort is None:
                keep = "min(rowid)"
            else:
                pick = "arg_max" if dedup_sort[1].lower() == "desc" else "arg_min"
                keep = f"coalesce({pick}(rowid, {dedup_sort[0]}), min(rowid))"
            keys = ", ".join(primary_keys)
            return (
                f"SELECT {', '.join(columns)} FROM {table_name} "
                f"WHERE rowid IN (SELECT {keep} FROM {table_name} GROUP BY {keys}) AND ({condition or '1 = 1'})"
            )

    class SpillingDuckDbClient(DuckDbClient):
        def _create_merge_followup_jobs(self, table_chain):  # type: ignore[no-untyped-def]
            return [SpillingDedupMergeJob.from_table_chain(table_chain, self.sql_client)]

    class duckdb(dlt.destinations.duckdb):  # noqa: N801 - dlt names its factories in lower case
        @property
        def client_class(self) -> Any:
            return SpillingDuckDbClient

        def capabilities(self, config: Any = None, naming: Any = None) -> Any:
            # Asked ~350 times in a run of every source, ~100 of them without a
            # config: dlt 1.31 then resolves the destination's whole configuration
            # (providers, environment) only to hand it to adjust_capabilities, which
            # reads the naming alone. The same answer, without the resolution.
            if config is not None or type(self).adjust_capabilities.__func__ is not Destination.adjust_capabilities.__func__:
                return super().capabilities(config, naming)
            caps = self._raw_capabilities()
            caps.update(self.caps_params)
            caps = self.adjust_capabilities(caps, None, naming)
            caps.update(self.caps_params)
            return caps

        @property
        def destination_type(self) -> str:
            # dlt's own type: the pipeline state, dataset() and sqlglot's dialect key on it.
            return DestinationReference.normalize_type("dlt.destinations.duckdb")

    return duckdb


# DuckDB keeps insertion order unless told not to, and buffers rows to do so; no
# model relies on row order. Loads run under a memory cap (DuckDB's own default is
# 80 % of RAM, which it fills with cached blocks), on one thread: sorts, joins and
# the merge's deduplication (_spilling_duckdb) spill to <warehouse>.tmp instead.
# A load's RSS is the process's own plus the cap (DuckDB fills it) plus what DuckDB
# allocates outside it while writing long text (measured ~200 MB for Marin
# Social's statistics, ~1.1 kB of main_metrics JSON per row). 128 MB: a first
# merge of 1,026,110 call rows (scale 100) passed under it, and failed under 96 MB
# ("Out of Memory"). DuckDB's 'dictionary' string compression is off: with
# it, the same loads took 65-145 MB more (scale 10, 128 MB cap, load step alone:
# Marin Social's 475-478 -> 329-341 MB, Retreaver's 375-381 -> 306-312 MB); text is still
# compressed (FSST), the file grew ~7 %. Every source at
# scale 10: peak RSS 1,107 MB with DuckDB's defaults, 665-710 MB with a 256 MB cap,
# 428-440 MB with these (and pipelines/memory.py; docs/benchmarks.md).
# [warehouse] duckdb_memory_limit, duckdb_threads
# and duckdb_disabled_compression ("" turns dictionary back on) override them.
DUCKDB_MEMORY_LIMIT = "128MB"
DUCKDB_THREADS = 1
DUCKDB_DISABLED_COMPRESSION = "dictionary"


# The transforms (dbt) build on the same file under a cap of their own: without one,
# DuckDB filled 80 % of RAM and the marts build at scale 100 peaked at 1,425-1,456 MB.
# Scale 100, `marketing-etl transform`: 160 MB -> 429 MB peak, 21.5 s; the build
# passes down to 96 MB and fails at 64 MB (spend_daily), so 160 MB leaves ~1.7x for
# bigger worlds. [warehouse] duckdb_transform_memory_limit overrides it;
# duckdb_threads sets both steps' threads.
DUCKDB_TRANSFORM_MEMORY_LIMIT = "160MB"
# step -> ([warehouse] key of its DuckDB cap, the default)
MEMORY_LIMITS = {
    "load": ("duckdb_memory_limit", DUCKDB_MEMORY_LIMIT),
    "transform": ("duckdb_transform_memory_limit", DUCKDB_TRANSFORM_MEMORY_LIMIT),
}


def memory_limit_setting(step: str = "load") -> tuple[str, str]:
    """(the environment variable that sets ``step``'s DuckDB cap, the cap in force)."""
    key, default = MEMORY_LIMITS[step]
    return f"WAREHOUSE__{key.upper()}", str(dlt.config.get(f"warehouse.{key}") or default)


def duckdb_settings(step: str = "load") -> dict[str, Any]:
    """DuckDB's settings for a connection that loads (``load``) or builds the marts
    (``transform``)."""
    disabled = dlt.config.get("warehouse.duckdb_disabled_compression")
    settings = {
        "preserve_insertion_order": False,
        "memory_limit": memory_limit_setting(step)[1],
        "threads": int(dlt.config.get("warehouse.duckdb_threads") or DUCKDB_THREADS),
    }
    disabled = DUCKDB_DISABLED_COMPRESSION if disabled is None else str(disabled)
    if disabled:
        settings["disabled_compression_methods"] = disabled
    return settings


def out_of_memory_hint(message: str, step: str = "load") -> str:
    """``message`` with, when it is DuckDB running out of its cap, the setting that
    raises the cap: the user's next step, named where the error is read."""
    if "Out of Memory" not in message or not is_local_duckdb():
        return message
    variable, limit = memory_limit_setting(step)
    return f"{message} (DuckDB's cap for the {step} step is {limit}: raise it with {variable})"


@contextmanager
def held_open(warehouse: str | Path) -> Iterator[None]:
    """Keep one connection to the local DuckDB file open while a pipeline works on it.

    dlt opens and closes the database around every load job and schema step (~60
    times in a run of every source): each open reads the catalog and each close
    checkpoints, 35-50 ms apiece on a small warehouse. While a connection is open,
    DuckDB hands the same file's later connects the open database (~0.1 ms) and
    checkpoints when the last one closes, here. dlt sets checkpoint_threshold=1gb,
    so a source's writes wait in the WAL until then; a run killed meanwhile has
    them replayed on the next open (tests/reliability/test_crash_consistency.py).
    Other destinations: nothing held."""
    if not is_local_duckdb():
        yield
        return
    import duckdb

    # The same arguments as dlt's connect (no config): a connect with another
    # configuration would be refused while this one is open.
    connection = duckdb.connect(str(Path(warehouse).resolve()))
    try:
        yield
    finally:
        connection.close()


def make_pipeline(name: str, warehouse: str | Path, progress: Any = None) -> dlt.Pipeline:
    return dlt.pipeline(
        pipeline_name=PIPELINE_PREFIX + name,
        destination=make_destination(warehouse),
        dataset_name=name,
        **({"progress": progress} if progress is not None else {}),
    )


def destination_secrets() -> list[str]:
    """The warehouse's password (``DESTINATION__<NAME>__CREDENTIALS``, a connection
    string or a table with ``password``), to mask like the sources' keys."""
    key = f"destination.{destination_name()}.credentials"
    try:
        credentials = dlt.secrets.get(key)
        password = dlt.secrets.get(f"{key}.password")
    except Exception:  # noqa: BLE001 - none or malformed: nothing to mask
        return []
    if isinstance(password, str):  # DESTINATION__<NAME>__CREDENTIALS__PASSWORD
        return [password]
    if isinstance(credentials, str):
        password = urlsplit(credentials).password if "://" in credentials else None
        return [v for v in (password and unquote(password), password) if v]
    if isinstance(credentials, dict) and isinstance(credentials.get("password"), str):
        return [credentials["password"]]
    return []



def finish_interrupted_normalize(pipeline: dlt.Pipeline) -> None:
    """Complete a normalize step that a kill cut between its two last moves.

    dlt commits a normalized package by renaming it into ``load/normalized/<id>``,
    then deletes the extracted copy; killed in between (SIGKILL cannot be deferred),
    every later normalize re-spools the same package and fails renaming onto the
    committed one ("Directory not empty"): the source is stuck for good (found by the
    crash suite). The committed package is whole (the rename is atomic), so the
    extracted copy is the leftover: remove it, as dlt would have.
    """
    root = Path(pipeline.working_dir)
    extracted = root / "normalize" / "extracted"
    if not extracted.is_dir():
        return
    for package in extracted.iterdir():
        if any((root / "load" / stage / package.name).exists() for stage in ("normalized", "loaded")):
            log.warning("source %s: removing the extracted copy of package %s, normalized before a kill",
                        pipeline.pipeline_name.removeprefix(PIPELINE_PREFIX), package.name)
            shutil.rmtree(package)
