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
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable
from urllib.parse import urlsplit

from dlt.sources.helpers.requests import Client
from requests import PreparedRequest, Response, Session
from requests.adapters import HTTPAdapter


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


@dataclass
class RequestStats:
    """What one API's client did during a run (reported in run summaries)."""

    requests: int = 0
    throttled: int = 0  # 429 answers
    server_errors: int = 0  # 5xx answers
    connection_errors: int = 0
    waited_seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "throttled": self.throttled,
            "server_errors": self.server_errors,
            "connection_errors": self.connection_errors,
            "waited_seconds": round(self.waited_seconds, 3),
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


class MeteredAdapter(HTTPAdapter):
    def __init__(self, limiter: RateLimiter, stats: RequestStats, redact: Redactor, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.limiter = limiter
        self.stats = stats
        self.redact = redact

    def send(self, request: PreparedRequest, *args: Any, **kwargs: Any) -> Response:  # type: ignore[override]
        waited = self.limiter.acquire()
        with self.stats._lock:
            self.stats.requests += 1
            self.stats.waited_seconds += waited
        try:
            response = super().send(request, *args, **kwargs)
        except Exception as exc:
            with self.stats._lock:
                self.stats.connection_errors += 1
            # requests puts the full URL (with ?api_key=...) into connection errors;
            # rebuild the message without it before dlt logs or re-raises it.
            exc.args = tuple(self.redact(str(a)) if isinstance(a, (str, Exception)) else a for a in exc.args)
            raise
        with self.stats._lock:
            if response.status_code == 429:
                self.stats.throttled += 1
            elif response.status_code >= 500:
                self.stats.server_errors += 1
        return response


class MeteredClient(Client):
    """dlt's retrying requests client with our adapter mounted underneath."""

    def __init__(self, limiter: RateLimiter, stats: RequestStats, redact: Redactor, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._metered_adapter = MeteredAdapter(limiter, stats, redact)

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


def session_for(api: str, rate_per_second: float | None = None, secrets: Iterable[str | None] = ()) -> Session:
    """The shared, rate-limited, metered, retrying session for ``api``."""
    with _CLIENTS_LOCK:
        if api not in _CLIENTS:
            stats = RequestStats()
            client = MeteredClient(RateLimiter(rate_per_second), stats, Redactor(secrets), raise_for_status=False)
            _CLIENTS[api] = (client, stats)
        return _CLIENTS[api][0].session


def stats_for(api: str) -> dict[str, Any]:
    with _CLIENTS_LOCK:
        entry = _CLIENTS.get(api)
    return entry[1].as_dict() if entry else RequestStats().as_dict()


def reset_clients() -> None:
    """Forget clients and their counters (start of a run)."""
    with _CLIENTS_LOCK:
        _CLIENTS.clear()


# ------------------------------------------------------------- credential failures
class SourceAuthError(RuntimeError):
    """401/403: the credentials were refused. Not retried (contract): the source fails at once."""


def auth_failure_hook(source: str, detail_field: str) -> Callable[..., Response]:
    """A response hook (for ``response_actions`` or ``hooks={"response": [...]}``)
    that turns 401/403 into one clear line: source, endpoint, status, the vendor's
    error text (``detail_field`` of its JSON body) and the setting to check; never
    the URL's query, which may carry the key."""

    def hook(response: Response, *args: Any, **kwargs: Any) -> Response:
        if response.status_code in (401, 403):
            try:
                detail = response.json().get(detail_field) or response.reason
            except Exception:  # noqa: BLE001 - a non-JSON error page: the reason phrase will do
                detail = response.reason
            path = urlsplit(response.url or "").path
            raise SourceAuthError(
                f"{source}: GET {path} answered {response.status_code} {detail}: "
                f"check SOURCES__{source.upper()}__API_KEY; not retried"
            )
        return response

    return hook
