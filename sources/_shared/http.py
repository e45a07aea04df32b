"""HTTP plumbing shared by the sources: a proactive rate limiter, request metering
and secret redaction, layered under dlt's own retrying session.

Why hand-written: dlt's requests client retries 429/5xx (honouring Retry-After) but
has no *proactive* limiter, so an API with a documented budget (Loops: 10 req/s)
would be hammered into 429s first. We keep dlt's retrying ``Client`` and mount an
adapter under it, so every attempt — first tries and retries alike — waits for
the limiter and is counted.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from dlt.sources.helpers.requests import Client
from dlt.sources.helpers.rest_client.exceptions import IgnoreResponseException
from requests import HTTPError, PreparedRequest, Response, Session
from requests.adapters import HTTPAdapter
from requests.exceptions import RequestException

try:
    import orjson
except ImportError:  # dlt installs it except on PyPy; requests' decoder is used then
    orjson = None  # type: ignore[assignment]


class RateLimiter:
    """At most ``rate`` requests per second, shared by every thread that holds it.

    A request may start no earlier than ``1/rate`` seconds after the previous
    one: smooth pacing, never a burst that a per-second window would reject.
    """

    def __init__(self, rate: float | None) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Block until a request may go; return the seconds waited."""
        if not self.interval:
            return 0.0
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        wait = start - now
        if wait > 0:
            time.sleep(wait)
        return wait


class InFlightLimiter:
    """At most ``limit`` requests of one API open at once, across every thread
    (None: no cap). Counts the requests open now and the most ever open.

    Why ours: a source that fetches independent pages side by side (dlt's extract
    worker pool) must still never hold more connections to a vendor than its
    setting allows, whatever the pool size. ``limit`` may be changed while in use.
    """

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit
        self.current = 0
        self.peak = 0
        self._cond = threading.Condition()

    def set_limit(self, limit: int | None) -> None:
        with self._cond:
            self.limit = limit
            self._cond.notify_all()

    def __enter__(self) -> InFlightLimiter:
        with self._cond:
            while self.limit and self.current >= self.limit:
                self._cond.wait()
            self.current += 1
            self.peak = max(self.peak, self.current)
        return self

    def __exit__(self, *exc: Any) -> None:
        with self._cond:
            self.current -= 1
            self._cond.notify()


# Upper bound of any source's max_concurrent_requests setting (and the size of the
# connection pool kept per API, so no connection is opened and thrown away).
MAX_IN_FLIGHT = 32


def concurrency_setting(api: str, value: Any) -> int:
    """A source's ``max_concurrent_requests`` as an int in 1..MAX_IN_FLIGHT, or a
    ValueError naming the setting."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if not 1 <= number <= MAX_IN_FLIGHT:
        raise ValueError(f"{api}: max_concurrent_requests must be an integer from 1 to {MAX_IN_FLIGHT} "
                         f"(SOURCES__{api.upper()}__MAX_CONCURRENT_REQUESTS), not {value!r}")
    return number


SKIPS_KEPT = 20  # skipped entities listed one by one in ops.runs (all are counted)


@dataclass
class RequestStats:
    """What one API's client did during a run (reported in run summaries)."""

    requests: int = 0
    throttled: int = 0  # 429 answers
    server_errors: int = 0  # 5xx answers
    connection_errors: int = 0
    waited_seconds: float = 0.0
    # Most requests open at once (1 for a source that walks its pages one by one).
    max_in_flight: int = 0
    # Per-entity answers that stayed errors after retries (see entity_error_hook).
    skipped_entities: int = 0
    skipped: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "throttled": self.throttled,
            "server_errors": self.server_errors,
            "connection_errors": self.connection_errors,
            "waited_seconds": round(self.waited_seconds, 3),
            "max_in_flight": self.max_in_flight,
            "skipped_entities": self.skipped_entities,
            "skipped": list(self.skipped),
        }


class Redactor:
    """Masks secret values (and ``key=``-style query parameters) in text."""

    QUERY_SECRET = re.compile(r"(?i)([?&](?:api_key|key|token|password)=)[^&\s'\"]+")

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        # Longest first so a secret containing another is masked whole.
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return self.QUERY_SECRET.sub(r"\1***", text)


def scrub_chain(exc: BaseException, redact: Callable[[str], str]) -> None:
    """Redact the text of ``exc`` and of every exception chained to it, in place:
    arguments, urllib3's ``url`` and ``reason`` attributes, causes and contexts."""
    pending: list[Any] = [exc]
    seen: set[int] = set()
    while pending:
        error = pending.pop()
        if not isinstance(error, BaseException) or id(error) in seen:
            continue
        seen.add(id(error))
        pending += [a for a in error.args if isinstance(a, BaseException)]
        pending += [getattr(error, "reason", None), error.__cause__, error.__context__]
        error.args = tuple(redact(str(a)) if isinstance(a, (str, BaseException)) else a for a in error.args)
        if isinstance(getattr(error, "url", None), str):
            error.url = redact(error.url)  # type: ignore[attr-defined]


# ------------------------------------------------------------- plain-http warning
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
_HTTP_WARNED: set[str] = set()
_HTTP_WARNED_LOCK = threading.Lock()


def plain_http_warning(api: str, url: str) -> str | None:
    """The warning for a key sent in clear text to ``url``, or None.

    A plain ``http://`` base URL (ListenLoop's documented host is one) carries the
    source's key unencrypted. Loopback hosts (the sandbox) are exempt, and so is a
    source with ``SOURCES__<API>__ALLOW_HTTP=true`` (an explicit opt-in).
    """
    parts = urlsplit(url or "")
    if parts.scheme.lower() != "http" or (parts.hostname or "") in LOOPBACK_HOSTS:
        return None
    import dlt  # here: this module is imported by the sandbox tools too

    if str(dlt.config.get(f"sources.{api}.allow_http")).strip().lower() in ("true", "1", "yes"):
        return None
    return (
        f"{api}: the base URL {parts.scheme}://{parts.netloc} is plain http://: the key travels unencrypted; "
        f"use https:// if the vendor serves it, or set SOURCES__{api.upper()}__ALLOW_HTTP=true to accept it"
    )


def warn_plain_http(api: str, url: str) -> None:
    """Log ``plain_http_warning`` once per source and process."""
    message = plain_http_warning(api, url)
    if message is None:
        return
    with _HTTP_WARNED_LOCK:
        if api in _HTTP_WARNED:
            return
        _HTTP_WARNED.add(api)
    import logging

    logging.getLogger("marketing_etl").warning(message, extra={"event": "plain_http", "source": api})


class MeteredAdapter(HTTPAdapter):
    def __init__(
        self, limiter: RateLimiter, stats: RequestStats, redact: Redactor, api: str = "", in_flight: InFlightLimiter | None = None, **kwargs: Any
    ) -> None:
        kwargs.setdefault("pool_maxsize", MAX_IN_FLIGHT)
        super().__init__(**kwargs)
        self.limiter = limiter
        self.in_flight = in_flight or InFlightLimiter()
        self.stats = stats
        self.redact = redact
        self.api = api

    def send(self, request: PreparedRequest, *args: Any, **kwargs: Any) -> Response:  # type: ignore[override]
        if self.api and self.redact.secrets and (request.url or "").startswith("http://"):
            warn_plain_http(self.api, request.url or "")  # a key is about to go out in clear text
        # A slot first, then the rate limiter, so the paced start is when the request
        # really goes: paced first, requests that then queued for a slot could leave
        # together, a burst over the rate.
        with self.in_flight:
            waited = self.limiter.acquire()
            with self.stats._lock:
                self.stats.requests += 1
                self.stats.waited_seconds += waited
                self.stats.max_in_flight = max(self.stats.max_in_flight, self.in_flight.peak)
            try:
                response = super().send(request, *args, **kwargs)
                if not kwargs.get("stream"):
                    # requests reads the body later, in Session.send: a body cut short
                    # (IncompleteRead) would fail there, uncounted and naming no request.
                    response.content  # noqa: B018 - read here, inside the try
            except Exception as exc:
                with self.stats._lock:
                    self.stats.connection_errors += 1
                # requests puts the full URL (with ?api_key=...) into connection errors,
                # and urllib3's errors chained below it keep it too (dlt pickles the
                # whole chain into its trace): scrub every link before dlt sees it.
                scrub_chain(exc, self.redact)
                if isinstance(exc, RequestException) and getattr(exc, "request", None) is None:
                    exc.request = _endpoint_only(request)  # describe_error names the endpoint from it
                raise
        with self.stats._lock:
            if response.status_code == 429:
                self.stats.throttled += 1
            elif response.status_code >= 500:
                self.stats.server_errors += 1
        response.json = _json_decoder(response)  # type: ignore[method-assign]
        return response


def _json_decoder(response: Response) -> Callable[..., Any]:
    """``response.json`` through orjson (a dependency of dlt) where the body is UTF-8
    JSON orjson reads; anything else (another declared charset, a BOM, NaN, an
    integer over 64 bits, a lone surrogate) goes to requests' own decoder, which
    gives the same value or the same error as before.

    Why: dlt's RESTClient calls ``response.json()`` on every page, and requests
    decodes with simplejson when it is installed (dlt installs it): 2.0 ms for a
    page of 100 calls, 0.5 ms with orjson (measured on the same 301 kB page).

    Decoded once per body: dlt decodes a page up to three times (the data
    selector, its paginator's total, our hooks), 5.7 ms each for a 450 kB Marin
    Social statistics page. Every call gets the same object, as a second decode
    would have given an equal one: dlt reads the body before it yields the rows
    (which later steps change in place) and never reads it again. A hook that
    rewrites the body (``response._content``, Loops' tombstones) is decoded anew."""
    decoded: list[Any] = []  # [content it was decoded from, value]

    def decode(**kwargs: Any) -> Any:
        encoding = (response.encoding or "utf-8").lower().replace("_", "-")
        if orjson is not None and not kwargs and encoding in ("utf-8", "utf8"):
            content = response.content
            if decoded and decoded[0] is content:
                return decoded[1]
            try:
                value = orjson.loads(content)
            except orjson.JSONDecodeError:
                pass
            else:
                decoded[:] = [content, value]
                return value
        return Response.json(response, **kwargs)

    return decode


def _endpoint_only(request: PreparedRequest) -> PreparedRequest:
    """Method and URL without query or headers (dlt pickles errors into its trace:
    a key in the query or an Authorization header must not travel with them)."""
    endpoint = PreparedRequest()
    endpoint.method = request.method
    endpoint.url = urlunsplit(urlsplit(request.url or "")._replace(query="", fragment=""))
    return endpoint


class MeteredClient(Client):
    """dlt's retrying requests client with our adapter mounted underneath."""

    def __init__(
        self, limiter: RateLimiter, stats: RequestStats, redact: Redactor, api: str = "", in_flight: InFlightLimiter | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._metered_adapter = MeteredAdapter(limiter, stats, redact, api, in_flight)

    def _make_session(self) -> Session:
        session = super()._make_session()
        session.mount("http://", self._metered_adapter)
        session.mount("https://", self._metered_adapter)
        return session


# --------------------------------------------------------------- one client per API
# Every resource of an API must share one limiter (the budget is per account, not
# per endpoint), so clients live in a process-wide registry keyed by API name.
_CLIENTS: dict[str, tuple[MeteredClient, RequestStats]] = {}
_CLIENTS_LOCK = threading.Lock()


def session_for(
    api: str, rate_per_second: float | None = None, secrets: Iterable[str | None] = (), max_in_flight: int | None = None
) -> Session:
    """The shared, rate-limited, metered, retrying session for ``api``.

    ``max_in_flight``: requests of ``api`` open at once, at most (None: no cap; a
    source that walks one page at a time never has two open anyway). A source that
    fetches independent pages side by side passes its max_concurrent_requests
    setting. The latest call sets it (one source per API)."""
    with _CLIENTS_LOCK:
        if api not in _CLIENTS:
            stats = RequestStats()
            client = MeteredClient(
                RateLimiter(rate_per_second), stats, Redactor(secrets), api, InFlightLimiter(max_in_flight), raise_for_status=False
            )
            _CLIENTS[api] = (client, stats)
        client = _CLIENTS[api][0]
        client._metered_adapter.in_flight.set_limit(max_in_flight)
        return client.session


def stats_for(api: str) -> dict[str, Any]:
    with _CLIENTS_LOCK:
        entry = _CLIENTS.get(api)
    return entry[1].as_dict() if entry else RequestStats().as_dict()


def reset_clients() -> None:
    """Forget clients and their counters (start of a run)."""
    with _CLIENTS_LOCK:
        _CLIENTS.clear()


# ------------------------------------------------------------------ loud failures
class SourceAuthError(RuntimeError):
    """401/403: the credentials were refused. Not retried (contract): the source fails at once."""


class SourceHTTPError(RuntimeError):
    """A non-2xx answer that retries did not (or cannot) cure: the resource fails.

    Not a ``requests`` exception, so dlt's client does not retry it; the message
    names source, endpoint (path only: the query may hold a key) and status."""


def _endpoint(response: Response) -> str:
    method = response.request.method if response.request is not None else "GET"
    return f"{method} {urlsplit(response.url or '').path}"


def _detail(response: Response, detail_field: str) -> str:
    """The vendor's own error text (``detail_field`` of a JSON body), else the reason phrase."""
    try:
        body = response.json()
        detail = body.get(detail_field) if isinstance(body, dict) else None
    except Exception:  # noqa: BLE001 - an HTML or empty error page: the reason phrase will do
        detail = None
    return " ".join(str(detail or response.reason or "").split())[:200]


def not_json(response: Response) -> str | None:
    """Why a 2xx body cannot be a JSON document, or None. A cheap look at the first
    bytes (every API here answers an object or an array), not a second parse."""
    if response.status_code == 204:
        return None
    head = response.content[:256].lstrip()
    if head[:1] in (b"{", b"["):
        return None
    kind = (response.headers.get("Content-Type") or "no content type").split(";")[0]
    if not head:
        return f"with an empty body ({kind}) instead of JSON"
    snippet = " ".join(head[:60].decode("utf-8", "replace").split())
    return f"with a body that is not JSON ({kind}: {snippet!r})"


def _retryable(response: Response) -> bool:
    return response.status_code == 429 or response.status_code >= 500


def error_hook(source: str, detail_field: str, credentials: str = "API_KEY") -> Callable[..., Response]:
    """The response hook every request of ``source`` goes through: 2xx passes, and
    every other answer becomes an exception naming source, endpoint and status.

    - 401/403: ``SourceAuthError`` at once (contract: not retried), with the
      setting to check.
    - 429 and 5xx: a ``requests.HTTPError`` carrying the response, which dlt's
      client retries (honouring Retry-After) and re-raises once its bounded
      retries are spent: after retries a 429/5xx fails the resource.
    - any other non-2xx (400, 404, a 3xx that was not followed): ``SourceHTTPError``.

    Use it in ``response_actions`` (rest_api) or ``hooks={"response": [...]}``
    (RESTClient.paginate): a hook given there replaces dlt's raise-for-status, so a
    hook that lets errors through would turn them into empty pages.
    """

    def hook(response: Response, *args: Any, **kwargs: Any) -> Response:
        status = response.status_code
        if 200 <= status < 300:
            problem = not_json(response)
            if problem:
                # A proxy's or CDN's HTML page with status 200: dlt would fail on it with a
                # bare JSONDecodeError that names neither source nor endpoint.
                raise SourceHTTPError(f"{source}: {_endpoint(response)} answered {status} {problem}")
            return response
        where = f"{source}: {_endpoint(response)} answered {status} {_detail(response, detail_field)}".rstrip()
        if status in (401, 403):
            raise SourceAuthError(f"{where}: check SOURCES__{source.upper()}__{credentials}; not retried")
        if _retryable(response):
            raise HTTPError(f"{where} (after retries)", response=response)
        raise SourceHTTPError(where)

    return hook


def entity_error_hook(source: str, detail_field: str, credentials: str = "API_KEY") -> Callable[..., Response]:
    """Like ``error_hook``, for endpoints that answer for ONE entity (one Loops
    email, one InboxFirst campaign): an answer that is still an error after
    retries is recorded (``record_skip``, counted in ``ops.runs``) and that entity
    is skipped, so one bad entity cannot fail the source on every run forever.

    401/403 still fail the source (the key, not the entity, is wrong). A 429/5xx
    is retried like everywhere else; the hook counts the attempts of each URL and
    skips the entity only on the last one dlt's client will make.
    """
    loud = error_hook(source, detail_field, credentials)
    attempts: dict[str, int] = {}
    lock = threading.Lock()

    def hook(response: Response, *args: Any, **kwargs: Any) -> Response:
        status = response.status_code
        if 200 <= status < 300 and not_json(response):
            # One entity's answer that is not JSON (an HTML page): skipped and counted.
            record_skip(source, _endpoint(response), status, str(not_json(response)))
            raise IgnoreResponseException(f"{source}: {_endpoint(response)} answered {status} {not_json(response)}: entity skipped")
        if 200 <= status < 300 or status in (401, 403):
            return loud(response)
        if _retryable(response):
            with lock:
                attempts[response.url] = attempts.get(response.url, 0) + 1
                tries = attempts[response.url]
            if tries < max_attempts(source):
                return loud(response)  # raises HTTPError: dlt retries it
        record_skip(source, _endpoint(response), status, _detail(response, detail_field))
        raise IgnoreResponseException(f"{source}: {_endpoint(response)} answered {status}: entity skipped")

    return hook


def max_attempts(api: str) -> int:
    """How many times dlt's client sends one request of ``api`` (first try included)."""
    with _CLIENTS_LOCK:
        entry = _CLIENTS.get(api)
    return int(entry[0]._retry_kwargs.get("max_attempts", 1)) if entry else 1


def record_skip(api: str, endpoint: str, status: int | None, detail: str = "") -> None:
    """Count one entity skipped after an error answer; the first few are kept word for word."""
    with _CLIENTS_LOCK:
        entry = _CLIENTS.get(api)
    stats = entry[1] if entry else None
    if stats is None:
        return
    with stats._lock:
        stats.skipped_entities += 1
        if len(stats.skipped) < SKIPS_KEPT:
            stats.skipped.append({"endpoint": endpoint, "status": status, "detail": detail})


def session_through(api: str, wrap: Callable[[HTTPAdapter], Any], **kwargs: Any) -> Session:
    """A new session of ``api``'s shared client (same retries, rate limiter, in-flight
    cap, counters and redaction as ``session_for``, which takes the same ``kwargs``)
    whose requests go through ``wrap(<the client's metered adapter>)``: for a source
    that must hand dlt's retry loop an answer it already has (Retreaver's next page,
    asked for ahead: sources/retreaver/helpers.py ``NextPageAhead``). Only that
    source's clients get this session; the shared one is left as it is."""
    session_for(api, **kwargs)
    with _CLIENTS_LOCK:
        client = _CLIENTS[api][0]
    session = client._make_session()
    adapter = wrap(client._metered_adapter)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
