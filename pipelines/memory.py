"""How the run process holds memory: glibc's allocator tuned once, freed memory
handed back between steps.

The sources extract side by side in threads, parsing pages into short-lived
Python objects. Measured at scale 100 (``bench_memory.py --tracemalloc``): at the
end of Retreaver's extract the process had 19 MB of live Python objects and 50 MB
in use in glibc's heap, but glibc kept 442 MB freed and not returned, and the
process's anonymous RSS was 442 MB. DuckDB (its own allocator, handed back when a
connection closes) and pyarrow (mimalloc, ``release_unused``) were not holding it.

pyarrow allocates from glibc too: ``ARROW_DEFAULT_MEMORY_POOL=system`` is set in
``pipelines/__init__.py``, not here, because pyarrow reads it once on import and
this module imports pyarrow.
"""

from __future__ import annotations

import ctypes
import gc
from collections.abc import Iterator
from contextlib import contextmanager

import pyarrow

# mallopt(3) parameter numbers, from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8

# Blocks of 128 KiB and more (page bodies, big lists and dicts) get their own
# mapping, handed back when freed. glibc's default threshold starts there too but
# rises after the first such block is freed, up to 32 MiB: from then on page-sized
# buffers come from the heap and leave holes only a trim at its top can return.
MMAP_THRESHOLD = 128 * 1024
TRIM_THRESHOLD = 128 * 1024
# One heap per thread (glibc's default allows 8 per core) each keeps its own
# freed memory; the extract threads share two.
ARENA_MAX = 2

_tuned: bool | None = None


def tune_allocator() -> bool:
    """Fix glibc's mmap and trim thresholds and cap its arenas, once per process,
    before the extract threads start. False where libc is not glibc (a no-op).

    Measured with every source, untuned and tuned side by side: scale 5, peak RSS
    538 -> 482 MB, RSS after the run 341 -> 273 MB, 203 -> 207 s; scale 100, peak
    578 -> 529 MB, Retreaver's load 566 -> 501 MB, 1,306 -> 1,329 s
    (docs/benchmarks.md, "Memory")."""
    global _tuned
    if _tuned is None:
        try:
            mallopt = ctypes.CDLL("libc.so.6").mallopt
        except (OSError, AttributeError):  # not glibc
            _tuned = False
        else:
            _tuned = all(
                mallopt(param, value) == 1
                for param, value in ((_M_MMAP_THRESHOLD, MMAP_THRESHOLD), (_M_TRIM_THRESHOLD, TRIM_THRESHOLD), (_M_ARENA_MAX, ARENA_MAX))
            )
    return _tuned


@contextmanager
def older_objects_frozen() -> Iterator[None]:
    """Leave the objects that exist before a run (modules, classes, the caller's
    own) out of the run's garbage collections (``gc.freeze``); back in afterwards.

    ``release_memory`` collects between steps; a full collection walks every
    tracked object, ~0.1 s for the ~150,000 of a process with dlt, DuckDB and
    pyarrow imported, and holds the GIL meanwhile, so the other sources' extract
    threads wait. Frozen, it walks only what the run made. Garbage that exists
    before the run is kept until the run ends (unfreeze), not lost."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def release_memory() -> None:
    """Hand memory freed by the steps before back to the OS before the next one.

    Extraction and normalize leave freed memory in glibc's and pyarrow's allocators
    (RSS, not live objects: tracemalloc counted ~15 MB of Python heap after Marin
    Social's extract); DuckDB's load then adds its own on top. Measured on every
    source at scale 10: peak 457 MB without, 400 MB with (docs/benchmarks.md)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass
    pyarrow.default_memory_pool().release_unused()
