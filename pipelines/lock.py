"""One writer at a time: a run holds an exclusive lock beside its warehouse.

A second ``run`` (or ``transform``) against the same warehouse while one is
running exits at once instead of queueing behind DuckDB's single-writer lock. The
lock is an OS file lock (flock): it is released when the process ends, however it
ends, so a crashed run never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO, Any


class WarehouseBusy(Exception):
    pass


class warehouse_lock:
    def __init__(self, warehouse: str | Path) -> None:
        self.path = Path(str(Path(warehouse).resolve()) + ".lock")
        self._handle: IO[str] | None = None

    def __enter__(self) -> "warehouse_lock":
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise WarehouseBusy(f"{self.path.with_suffix('')} is being written by {holder}; not starting a second run") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        self._handle = handle
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None
