"""JSONPaths compiled once for every source.

dlt parses a JSONPath given as a string anew each time it is used (a fresh parser,
~0.3 ms more per page than a compiled path, measured on a page of 100 Retreaver
calls); it takes a compiled path as it is, wherever it takes a string
(``data_selector``, a paginator's ``total_path``, ``jsonpath.find_values``)."""

from __future__ import annotations

from functools import cache

from dlt.common import jsonpath


@cache
def json_path(path: str) -> jsonpath.JSONPath:
    """``path`` compiled, the same object for every caller (it is only read)."""
    return jsonpath.compile_path(path)
