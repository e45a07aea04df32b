"""Pages of one list advanced in dlt's extract pool, side by side with other lists."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any


def parallel_pages(pages: Iterator[Any]) -> Iterator[Callable[[], Any] | None]:
    """dlt's ``wrap_parallel_iterator`` (dlt 1.31), closed safely.

    A transformer yields this generator; dlt's extract pool calls each callable it
    yields in a worker thread, one page at a time, so lists yielded side by side are
    fetched at once while each list's pages stay in order.

    Hand-written because dlt's wrapper, closed while a worker thread is inside
    ``next(pages)`` (one list failed and dlt closes the others; its pool waits only
    2 s for pages still in flight), calls ``pages.close()`` on the running
    generator: "ValueError: generator already executing", raised over the error
    that made dlt close it and printed again as "Exception ignored" when the
    wrapper is collected. Here a page in flight is left to finish; its generator
    is closed when it is collected, no longer running.
    """
    running = threading.Lock()
    exhausted = busy = False

    def next_page() -> Any:
        nonlocal exhausted, busy
        try:
            with running:
                return next(pages)
        except StopIteration:
            exhausted = True
            return None
        finally:
            busy = False

    try:
        while not exhausted:
            while busy:
                yield None
            busy = True
            yield next_page
    finally:
        if running.acquire(blocking=False):
            try:
                pages.close()  # type: ignore[attr-defined]
            finally:
                running.release()
