"""What the raw tables look like: every column a staging model reads, with its type.

Each source package declares ``TABLE_COLUMNS`` in its ``settings.py`` (table name ->
dlt column hints) and passes those hints to its resources, so every column the
transforms read exists in the warehouse with its type even when the vendor omits
the field or only ever sends null (dlt creates no column for an all-null field).
The transforms read the same declaration to stand in for the raw tables of a
source that is not configured (its platform is then simply absent from the marts).
"""

from __future__ import annotations

import importlib
from typing import Any

# Each API's package under sources/; its raw tables land in a dataset of the same name.
SOURCE_APIS = ("listenloop", "marin_social", "inboxfirst", "retreaver", "loops", "fx")


def declared_columns() -> dict[str, dict[str, dict[str, Any]]]:
    """``"dataset.table"`` -> {column: dlt column hints} for every declared raw table."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for api in SOURCE_APIS:
        settings = importlib.import_module(f"sources.{api}.settings")
        for table, columns in getattr(settings, "TABLE_COLUMNS", {}).items():
            out[f"{api}.{table}"] = dict(columns)
    return out
