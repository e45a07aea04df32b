"""One writer at a time, and short readers (``status``) that never break a run.

* A run (``run``, ``backfill``, ``transform``, ``demo``) holds an exclusive lock on
  ``<warehouse>.lock``. A second one exits at once instead of queueing behind
  DuckDB's single-writer lock.
* DuckDB also refuses a writer while any other process has the file open, even
  read-only. So ``status``, which reads the warehouse for a second or two, holds a
  SHARED lock on ``<warehouse>.readers.lock``, and a run takes that lock
  exclusively before it opens the warehouse. A run starting during a status check
  therefore waits for it (up to READERS_WAIT_SECONDS) instead of failing every
  source; a status check during a run exits at once saying a run is writing.

The locks are OS file locks (flock): they are released when the process ends,
however it ends, so a crashed run never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from typing import IO, Any

READERS_WAIT_SECONDS = 120.0


class WarehouseBusy(Exception):
    pass


def _lock_path(warehouse: str | Path, suffix: str) -> Path:
    return Path(str(Path(warehouse).resolve()) + suffix)


def _try_lock(handle: IO[str], kind: int) -> bool:
    """flock without waiting: True if taken, False if another holder has it."""
    try:
        fcntl.flock(handle, kind | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _release(handle: IO[str] | None) -> None:
    if handle is not None:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


class warehouse_lock:
    """The writer's lock: exclusive, never waits for another writer."""

    def __init__(self, warehouse: str | Path, readers_wait_seconds: float = READERS_WAIT_SECONDS) -> None:
        self.path = _lock_path(warehouse, ".lock")
        self.readers_path = _lock_path(warehouse, ".readers.lock")
        self.readers_wait_seconds = readers_wait_seconds
        self._handle: IO[str] | None = None
        self._readers: IO[str] | None = None

    def __enter__(self) -> warehouse_lock:
        handle = self.path.open("a+")
        if not _try_lock(handle, fcntl.LOCK_EX):
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise WarehouseBusy(f"{self.path.with_suffix('')} is being written by {holder}; not starting a second run")
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        self._handle = handle
        try:
            self._readers = self._wait_for_readers()
        except BaseException:
            _release(self._handle)
            self._handle = None
            raise
        return self

    def _wait_for_readers(self) -> IO[str]:
        readers = self.readers_path.open("a+")
        deadline = time.monotonic() + self.readers_wait_seconds
        while not _try_lock(readers, fcntl.LOCK_EX):
            if time.monotonic() >= deadline:
                readers.close()
                raise WarehouseBusy(
                    f"{self.path.with_suffix('')} has been held open by `marketing-etl status` for "
                    f"{self.readers_wait_seconds:g} s; not starting"
                )
            time.sleep(0.1)
        return readers

    def __exit__(self, *exc: Any) -> None:
        _release(self._readers)
        _release(self._handle)
        self._readers = self._handle = None


class warehouse_read_lock:
    """A short reader's lock: shared with other readers, refused while a run writes."""

    def __init__(self, warehouse: str | Path) -> None:
        self.readers_path = _lock_path(warehouse, ".readers.lock")
        self._handle: IO[str] | None = None

    def __enter__(self) -> warehouse_read_lock:
        handle = self.readers_path.open("a+")
        if not _try_lock(handle, fcntl.LOCK_SH):
            handle.close()
            raise WarehouseBusy(f"{self.readers_path.name.removesuffix('.readers.lock')} is being written by a run; try again when it ends")
        self._handle = handle
        return self

    def __exit__(self, *exc: Any) -> None:
        _release(self._handle)
        self._handle = None
