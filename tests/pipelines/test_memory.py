"""How a run holds memory (pipelines/memory.py): glibc's allocator tuned, Arrow on
glibc, the collections between steps kept to what the run made."""

from __future__ import annotations

import ctypes.util
import gc
import os
import subprocess
import sys

import pytest

import pipelines.runner
from pipelines.memory import MMAP_THRESHOLD, release_memory

# Frees a 4 MiB block (glibc's default then raises its mmap threshold to 4 MiB),
# allocates a block just over the tuned threshold, and prints how much of it got a
# mapping of its own (mallinfo2's hblkhd), i.e. memory a free() hands back at once.
PROBE = """
import ctypes, sys
from pipelines.memory import tune_allocator
if sys.argv[1] == "tuned":
    assert tune_allocator()
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
fields = ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")
class MallInfo2(ctypes.Structure):
    _fields_ = [(f, ctypes.c_size_t) for f in fields]
libc.mallinfo2.restype = MallInfo2
libc.free(libc.malloc(4 << 20))
before = libc.mallinfo2().hblkhd
block = libc.malloc(int(sys.argv[2]))
print(libc.mallinfo2().hblkhd - before)
"""

glibc_only = pytest.mark.skipif(
    sys.platform != "linux" or "libc.so" not in str(ctypes.util.find_library("c")), reason="glibc's mallopt"
)


def mapped_bytes(mode: str, size: int) -> int:
    out = subprocess.run([sys.executable, "-c", PROBE, mode, str(size)], capture_output=True, text=True, check=True)
    return int(out.stdout)


@glibc_only
def test_buffers_over_the_threshold_get_a_mapping_even_after_a_big_block_was_freed():
    size = MMAP_THRESHOLD + 64 * 1024
    # glibc's default: the freed 4 MiB block raised the threshold, the buffer came from the heap.
    assert mapped_bytes("default", size) == 0
    assert mapped_bytes("tuned", size) >= size


def test_arrow_allocates_from_glibc_not_a_pool_of_its_own():
    """pyarrow's own pool (mimalloc) keeps freed batches resident; the system pool is
    glibc, tuned and trimmed with the rest. The CLI sets it before pyarrow loads."""
    probe = "import pipelines.cli, pyarrow; print(pyarrow.default_memory_pool().backend_name)"
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "system"


def test_collections_between_steps_leave_out_what_existed_before_the_run(warehouse, monkeypatch):
    """A full collection walks every object of the process (~0.1 s with dlt and
    pyarrow imported, the GIL held); between a run's steps only what the run made
    is walked. Afterwards the caller's objects are collectable again."""
    older = [object() for _ in range(10)]  # a container the caller holds
    walked: list[bool] = []  # per collection: would it walk `older`?

    def release_and_record() -> None:
        walked.append(any(o is older for o in gc.get_objects()))  # frozen objects are not listed
        release_memory()

    monkeypatch.setattr(pipelines.runner, "release_memory", release_and_record)
    (result,) = warehouse.run("listenloop").sources
    assert result.status == "loaded", result.message
    assert walked == [False, False]  # before normalize, before load
    assert gc.get_freeze_count() == 0 and any(o is older for o in gc.get_objects())
