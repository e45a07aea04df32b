"""Retreaver pieces dlt does not ship."""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from datetime import date, timedelta
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit, urlunsplit

import pendulum
from dlt.common.configuration import configspec
from dlt.sources.helpers.rest_client.auth import APIKeyAuth
from dlt.sources.helpers.rest_client.paginators import BaseNextUrlPaginator
from requests import PreparedRequest, Request, Response
from requests.adapters import BaseAdapter

from sources._shared.http import record_skip, session_through
from sources._shared.schema import to_decimal
from sources.retreaver.settings import CALL_MONEY_FIELDS, REPORT_MONEY_FIELDS, UTM_TAGS

log = logging.getLogger(__name__)


@configspec
class QueryKeyAuth(APIKeyAuth):
    """``api_key`` in the query string, added only when the URL lacks it: the doc's
    Link URLs already carry every parameter, key included (doc "Paginated"), and
    dlt's APIKeyAuth would append a second copy."""

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        if self.name in parse_qs(urlsplit(request.url or "").query):
            return request
        return super().__call__(request)


class PaginationError(RuntimeError):
    """A walk that cannot be trusted to end: the source fails, naming the endpoint."""


class PageWalkPaginator(BaseNextUrlPaginator):
    """``page`` from 1, following ``Link rel="next"`` when the answer has one and
    otherwise asking for the next page number; the walk ends on an EMPTY page only.

    Why hand-written: dlt's HeaderLinkPaginator ends at the first page without a
    next link, but the doc shows the Link header for the v1 indexes only (doc
    "Paginated"), not for v2 calls nor reports; and a page shorter than per_page
    is no proof of the end either when the server caps per_page lower than asked.
    dlt's PageNumberPaginator cannot follow a Link and stops silently at
    ``maximum_page``. Guards, both loud: more than ``max_pages`` non-empty pages,
    or a page identical to the one before (a server that ignores ``page``).
    """

    def __init__(self, source: str, max_pages: int, ahead: NextPageAhead | None = None) -> None:
        super().__init__()
        self.source = source
        self.max_pages = max_pages
        self.ahead = ahead
        self.pages = 0
        self._previous: bytes | None = None
        self._walk: _Walk | None = None

    def init_request(self, request: Request) -> None:
        self._has_next_page = True
        self.pages = 0
        self._previous = None
        request.params = {**(request.params or {}), "page": 1}
        if self.ahead is not None:
            # One walk = one Request object, mutated page after page by dlt's
            # RESTClient.paginate. When dlt drops it (the walk ended, however), or
            # this paginator starts another walk, the page asked ahead for it, if
            # any, is never handed out.
            if self._walk is not None:
                self._walk.end()
            self._walk = _Walk()
            weakref.finalize(request, self._walk.end)

    def update_request(self, request: Request) -> None:
        super().update_request(request)
        # Only after update_state found a next page (never after the empty page or
        # a loud guard): ask for it now, while dlt processes this one.
        if self.ahead is not None and self.has_next_page:
            self.ahead.ask(request, self._walk)

    def update_state(self, response: Response, data: list[Any] | None = None) -> None:
        self.pages += 1
        if not data:
            self._next_reference = None
            return
        where = f"{self.source}: GET {urlsplit(response.url or '').path}"
        digest = hashlib.sha256(response.content or b"").digest()
        if digest == self._previous:
            raise PaginationError(f"{where} answered page {self.pages} exactly like the page before: the server ignores `page`; stopped")
        self._previous = digest
        if self.pages >= self.max_pages:
            raise PaginationError(
                f"{where} still returns rows after {self.pages} pages: raise SOURCES__{self.source.upper()}__MAX_PAGES if that is expected"
            )
        link = response.links.get("next", {}).get("url")
        self._next_reference = link or with_page(response.url, page_of(response.url) + 1)


class NextPageAhead(BaseAdapter):
    """Asks for a walk's next page while dlt processes the current one, and hands
    that answer to the walk's own request for it.

    Why hand-written: dlt's RESTClient.paginate sends one request at a time and
    has no read-ahead; a Retreaver page's successor is known only once the page
    has arrived (``Link rel="next"`` or the next ``page``), so at 100 ms per answer
    the walk paid latency + processing for every page. ``PageWalkPaginator``
    calls ``ask`` from ``update_request`` (next page known, page not yet yielded):
    the request is prepared by the walk's own session (same URL, key and headers
    dlt will send) and sent from the walk's own fetcher thread through the
    source's metered adapter (rate limiter, in-flight cap, request counters, redaction).
    This object is the adapter of that session (``_shared.http.session_through``),
    so when dlt then sends that exact URL, ``send`` returns the answer already
    received *below* dlt's retry loop: everything above it runs unchanged, as if
    the answer had just arrived. A 429 or 5xx is retried (honouring Retry-After)
    by a real request, a 401/403 or 404 fails the source, the error hooks see it;
    a prefetch that raised (connection dropped, timeout) is forgotten and the
    request is sent again. Never an empty page.

    At most one page ahead per walk (two requests of a walk open at once). A walk
    that ends before asking for the page (dlt's incremental closes it at the
    cursor, or the run fails) wasted that one request: its answer is never handed
    out once the walk's Request object is gone (``_Walk.end``) and is dropped at
    the next ``ask`` or ``send``; the walk's fetcher ends after that request. The walk
    ending on an empty page asks nothing ahead.

    Pages that shift while walking (calls, newest ``updated_at`` first; see the
    comment on the calls endpoint): page N+1 is asked only once page N's answer
    has arrived, so the server still computes the pages in walk order, each after
    the one before was answered; only our processing of page N no longer sits
    between the two reads. That reasoning assumes nothing about the gap between
    two reads, so it holds as it is: a row pushed across a boundary is read twice
    (merge on uuid keeps one), a row that did not move is never skipped, the call
    that moved to page 1 is read by the next run. A page asked ahead and dropped
    is never processed: neither its rows nor the cursor come from it.
    """

    def __init__(self, api: str, **session_kwargs: Any) -> None:
        super().__init__()
        self.api = api
        self.inner: BaseAdapter | None = None
        self._pages: dict[str, _Ahead] = {}  # prepared URL (holds the key) -> its answer
        self._lock = threading.Lock()
        self.session = session_through(api, self._over, **session_kwargs)

    def _over(self, inner: BaseAdapter) -> NextPageAhead:
        self.inner = inner
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> NextPageAhead:
        return self  # rest_api deep-copies its config (and so the paginators) to validate it

    def ask(self, request: Request, walk: _Walk) -> None:
        prepared = self.session.prepare_request(request)
        if prepared.method != "GET" or prepared.body is not None or not prepared.url:
            return
        ahead = _Ahead(walk)
        with self._lock:
            self._drop_ended()
            if prepared.url in self._pages:
                return
            self._pages[prepared.url] = ahead
        if walk.fetcher is None:
            # One thread per walk, not per page: starting a thread waits for it to
            # run (~1 ms with the GIL busy), which a 1,000-page walk paid per page.
            fetcher = threading.Thread(target=self._serve, args=(walk,), name=f"{self.api}-next-page", daemon=True)
            try:
                fetcher.start()
            except RuntimeError:  # no thread to be had: the walk sends this request itself
                ahead.done.set()
                return
            walk.fetcher = fetcher
        walk.asked.put((prepared, ahead))

    def _serve(self, walk: _Walk) -> None:
        """The walk's fetcher: the pages asked for it, one at a time, until it ends."""
        while (asked := walk.asked.get()) is not None:
            self._fetch(*asked)

    def _fetch(self, prepared: PreparedRequest, ahead: _Ahead) -> None:
        try:
            assert self.inner is not None
            kwargs = self.session.merge_environment_settings(prepared.url, {}, None, None, None)
            ahead.response = self.inner.send(prepared, timeout=self.session.timeout, **kwargs)  # type: ignore[attr-defined]
        except Exception as exc:  # noqa: BLE001 - the walk sends it again; no URL logged (it holds the key)
            log.debug("%s: a page asked ahead failed (%s): asked again when needed", self.api, type(exc).__name__)
        finally:
            ahead.done.set()

    def send(self, request: PreparedRequest, **kwargs: Any) -> Response:  # type: ignore[override]
        with self._lock:
            ahead = self._pages.pop(request.url or "", None) if request.method == "GET" else None
            self._drop_ended()
        if ahead is not None and not ahead.walk.ended:
            ahead.done.wait()
            if ahead.response is not None:
                return ahead.response
        assert self.inner is not None
        return self.inner.send(request, **kwargs)

    def _drop_ended(self) -> None:
        """Forget the pages asked ahead for walks that ended (under ``_lock``)."""
        for url in [u for u, a in self._pages.items() if a.walk.ended]:
            del self._pages[url]

    def close(self) -> None:
        """Nothing of ours to close: the metered adapter belongs to the shared client."""


class _Walk:
    """One walk of a paginator, and the queue of pages asked ahead for it. ``end``
    runs as a weakref finalizer, at any point of any thread, so it takes no lock:
    it sets a flag and wakes the walk's fetcher to stop (``SimpleQueue.put`` is
    safe there)."""

    ended = False

    def __init__(self) -> None:
        self.asked: queue.SimpleQueue[tuple[PreparedRequest, _Ahead] | None] = queue.SimpleQueue()
        self.fetcher: threading.Thread | None = None

    def end(self) -> None:
        self.ended = True
        self.asked.put(None)


class _Ahead:
    def __init__(self, walk: _Walk) -> None:
        self.walk = walk
        self.response: Response | None = None
        self.done = threading.Event()


def page_of(url: str) -> int:
    values = parse_qs(urlsplit(url or "").query).get("page")
    try:
        return int(values[-1]) if values else 1
    except ValueError:
        return 1


def with_page(url: str, page: int) -> str:
    """``url`` with its ``page`` parameter set, every other parameter kept."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "page"]
    return urlunsplit(parts._replace(query=urlencode([*query, ("page", str(page))])))


def tag_value(tags: Any, key: str) -> str | None:
    """The value of tag ``key`` on a call, whatever shape ``tags`` has.

    Doc ("V2 - Get recent Calls"): ``tags`` is an object of strings, and a tag that
    got several values holds them comma-joined (``"attempt": "<id>,<id>"``).
    Also read: list values (``{"utm_source": ["a", "b"]}``) and a list of
    key/value pairs (the doc's ``tag_values`` shape on targets and contacts).
    Assumption (doc silent on which one counts): with several values the first
    wins, the order the vendor lists them in. ``tags`` keeps them all as JSON.
    """
    values: list[Any] = []
    if isinstance(tags, dict):
        found = tags.get(key)
        values = found if isinstance(found, list) else [found]
    elif isinstance(tags, list):
        values = [t.get("value") for t in tags if isinstance(t, dict) and t.get("key") == key]
    for value in values:
        if value is None:
            continue
        for part in str(value).split(","):
            if part.strip():
                return part.strip()
    return None


def call_shaper(email_tag: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Money to Decimal; the tags the transforms join on copied into columns."""
    tag_columns = {**{f"tag_{key}": key for key in UTM_TAGS}, "tag_email": email_tag}

    def shape_call(call: dict[str, Any]) -> dict[str, Any]:
        for field in CALL_MONEY_FIELDS:
            if field in call:
                call[field] = to_decimal(call[field])
        tags = call.get("tags")
        for column, key in tag_columns.items():
            call[column] = tag_value(tags, key)
        return call

    return shape_call


def keyed_rows(source: str, endpoint: str, key: str) -> Callable[[dict[str, Any]], bool]:
    """Filter for a catalogue index: a row without ``key`` cannot be merged (dlt
    fails the whole load package, calls included, on a null primary key), so it
    is counted as skipped in ops.runs (``record_skip``) and logged, never loaded."""

    def keep(row: dict[str, Any]) -> bool:
        if row.get(key) not in (None, ""):
            return True
        detail = f"row without `{key}` skipped (keys: {', '.join(sorted(row)[:12])})"
        record_skip(source, endpoint, None, detail)
        log.warning("%s: %s: %s", source, endpoint, detail)
        return False

    return keep


def shape_report_row(row: dict[str, Any], **keys: Any) -> dict[str, Any]:
    for field in REPORT_MONEY_FIELDS:
        if field in row:
            row[field] = to_decimal(row[field])
    return {**keys, **row}


def report_windows(start: date, end: date, max_days: int) -> Iterator[tuple[date, date]]:
    """[start, end) cut into windows of at most ``max_days`` (doc: < 2 years apart)."""
    while start < end:
        stop = min(end, start + timedelta(days=max_days))
        yield start, stop
        start = stop


def days_with_calls(rows: Iterable[dict[str, Any]]) -> list[date]:
    return [r["day"] for r in rows if (r.get("total_calls") or 0) > 0]


def rfc3339_midnight(day: date, timezone: str) -> str:
    """Midnight of ``day`` in ``timezone`` in the format the doc gives for the calls
    filters (doc "V2 - Get recent Calls": created_at_start ``YYYY-MM-DDTHH:MM:SS+HH:MM``,
    "formatted according to rfc3339"). Sent URL-encoded (``+`` as ``%2B``)."""
    return pendulum.datetime(day.year, day.month, day.day, tz=timezone).isoformat()
