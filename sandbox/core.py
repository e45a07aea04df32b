"""The pieces every emulator shares: request/response objects, a tiny router,
HTTP errors, the emulator base class, fault rules and the request log.

Routing lives in each API's ``routes.py`` and state in its ``models.py``
(moto's split); this module knows nothing about any one vendor.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode

# Query parameters and headers whose values the request log never shows: the log is
# served over HTTP and read by tests, and secrets must not travel further than needed.
SECRET_QUERY_PARAMS = {"key", "api_key"}
SECRET_HEADERS = {"authorization", "x-user-token"}


class HTTPError(Exception):
    """Raised by a handler to answer with a status code and a JSON body."""

    def __init__(self, status: int, body: Any = None, headers: dict[str, str] | None = None):
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body if body is not None else {"error": _REASONS.get(status, "error")}
        self.headers = headers or {}


_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


@dataclass
class Request:
    method: str
    path: str  # path below the API prefix, always starting with "/"
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes = b""
    base_url: str = ""  # scheme://host:port/<prefix>, for absolute pagination links
    params: dict[str, str] = field(default_factory=dict)  # filled by the router

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def int_arg(self, name: str, default: int, minimum: int | None = None, maximum: int | None = None) -> int:
        raw = self.arg(name)
        if raw is None or raw == "":
            value = default
        else:
            try:
                value = int(raw)
            except ValueError:
                raise HTTPError(400, {"error": f"parameter {name!r} must be an integer"}) from None
        if minimum is not None and value < minimum:
            raise HTTPError(400, {"error": f"parameter {name!r} must be >= {minimum}"})
        if maximum is not None and value > maximum:
            value = maximum
        return value

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    def json(self) -> Any:
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            raise HTTPError(400, {"error": "body is not valid JSON"}) from None

    def url_with(self, path: str | None = None, **changes: Any) -> str:
        """Absolute URL of this request (or ``path``) with query params replaced."""
        query = {k: v[-1] for k, v in self.query.items()}
        for k, v in changes.items():
            if v is None:
                query.pop(k, None)
            else:
                query[k] = str(v)
        return f"{self.base_url}{path or self.path}" + (f"?{urlencode(query)}" if query else "")


# How every JSON body is written. Built once: json.dumps builds an encoder per call.
_ENCODER = json.JSONEncoder(separators=(",", ":"), default=str)


def to_json(value: Any) -> str:
    """The JSON text ``Response.encode`` writes for ``value``."""
    return _ENCODER.encode(value)


class JSONBytes(bytes):
    """A body a handler wrote as JSON text itself, byte for byte what ``Response.encode``
    would write for the object it stands for (hot pages are assembled from cached
    fragments). Sent as is, and still JSON to the bad-data rules (``Corruptor``)."""


# Scalars as json.dumps writes them, for handlers that assemble JSON text: strings
# with its own escaper (ensure_ascii), numbers as repr() (finite floats only).
json_str = json.encoder.encode_basestring_ascii


def json_opt(value: str | None) -> str:
    return "null" if value is None else json_str(value)


@dataclass
class Response:
    status: int = 200
    body: Any = None  # JSON-serialisable object, JSONBytes, or bytes sent as they are
    headers: dict[str, str] = field(default_factory=dict)
    # Work for after the answer is sent (under the emulator's lock), while the
    # client reads it: e.g. rendering the page a walk asks for next. Never part
    # of an answer; dropped when a bad-data rule rewrites the body.
    after: Callable[[], None] | None = field(default=None, repr=False, compare=False)

    def encode(self) -> bytes:
        body = self.body
        if isinstance(body, (bytes, bytearray)):
            return body if type(body) is bytes else bytes(body)
        if body is None:
            return b""
        return _ENCODER.encode(body).encode()


Handler = Callable[[Request], Response | Any]


class Router:
    """Maps ``METHOD /path/{param}`` patterns to handlers; answers 404/405 itself."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        # Literal parts are escaped ("/calls.json" must not match "/calls/x.json").
        parts = re.split(r"\{(\w+)\}", pattern.rstrip("/") or "/")
        regex = "".join(f"(?P<{p}>[^/]+)" if i % 2 else re.escape(p) for i, p in enumerate(parts))
        self._routes.append((method.upper(), re.compile(f"^{regex}/?$"), handler))

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        def decorator(fn: Handler) -> Handler:
            self.add(method, pattern, fn)
            return fn

        return decorator

    def dispatch(self, request: Request) -> Response:
        allowed = False
        for method, regex, handler in self._routes:
            match = regex.match(request.path)
            if not match:
                continue
            if method != request.method:
                allowed = True
                continue
            request.params = match.groupdict()
            result = handler(request)
            return result if isinstance(result, Response) else Response(200, result)
        if allowed:
            raise HTTPError(405)
        raise HTTPError(404, {"error": f"no route for {request.method} {request.path}"})


class Emulator:
    """One vendor API. Subclasses set ``name`` and ``prefixes`` and fill routers.

    ``prefixes`` maps a URL prefix (``"retreaver"``) to the Router serving it; most
    APIs have one, Retreaver has two (its v2 calls live on another host).
    """

    name: str = ""

    def __init__(self, world: World) -> None:  # noqa: F821 - forward ref to sandbox.world
        self.world = world
        self.lock = threading.RLock()
        self.prefixes: dict[str, Router] = {}

    # Subclasses implement these four.
    def env(self, base_url: str) -> dict[str, str]:
        """Environment variables a source needs to talk to this emulator."""
        raise NotImplementedError

    def advance(self, old_now: datetime, new_now: datetime) -> None:
        """Move the world forward: new activity and late changes up to ``new_now``."""
        raise NotImplementedError

    def truth(self) -> dict[str, Any]:
        """What a correct pipeline must end up with: counts and sums per entity."""
        raise NotImplementedError

    def close(self) -> None:
        """Release resources (files, connections). Called on reset and shutdown."""


def utc_now() -> datetime:
    return datetime.now(UTC)


# ----------------------------------------------------------------------------- faults

FAULT_KINDS = ("400", "404", "429", "500", "502", "503", "drop", "slow", "truncate", "html200", "advance")
STATUS_FAULTS = ("400", "404", "429", "500", "502", "503")


@dataclass
class FaultRule:
    """Make a share of matching requests misbehave.

    kind: ``429`` (with ``Retry-After``), ``500``/``502``/``503``, ``400``/``404`` (a
    client error, e.g. for one entity with ``path_contains``), ``drop`` (close the
    connection without answering), ``slow`` (answer after ``delay`` seconds) or
    ``truncate`` (send the headers and half the body, then close), ``html200`` (an
    HTML error page with status 200, as a proxy or CDN in front of a vendor sends)
    or ``advance`` (the world moves ``advance_hours`` forward before this answer:
    a page that changes between two reads of a walk, or of a retried request).
    ``rate`` is the share of matching requests hit (drawn from a seeded RNG, so runs
    repeat); ``count`` caps how many are hit in all (None: no cap).
    """

    kind: str
    api: str = "*"
    rate: float = 1.0
    count: int | None = None
    retry_after: int | None = 1
    delay: float = 2.0
    path_contains: str | None = None
    advance_hours: float = 6.0
    hits: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {FAULT_KINDS}, not {self.kind!r}")
        if not 0.0 <= float(self.rate) <= 1.0:
            raise ValueError("fault rate must be between 0 and 1")
        self.rate = float(self.rate)
        if self.kind == "advance" and not float(self.advance_hours) > 0:
            raise ValueError("advance_hours must be > 0")

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "api": self.api,
            "rate": self.rate,
            "count": self.count,
            "retry_after": self.retry_after,
            "delay": self.delay,
            "path_contains": self.path_contains,
            "advance_hours": self.advance_hours,
            "hits": self.hits,
        }


class FaultInjector:
    def __init__(self, seed: int) -> None:
        self._rng = random.Random(f"faults-{seed}")
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()

    def set(self, rules: Iterable[FaultRule]) -> None:
        with self._lock:
            self._rules = list(rules)

    def add(self, rule: FaultRule) -> None:
        with self._lock:
            self._rules.append(rule)

    def rules(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.as_dict() for r in self._rules]

    def pick(self, api: str, path: str) -> FaultRule | None:
        with self._lock:
            for rule in self._rules:
                if rule.api not in ("*", api):
                    continue
                if rule.path_contains and rule.path_contains not in path:
                    continue
                if rule.count is not None and rule.hits >= rule.count:
                    continue
                if self._rng.random() < rule.rate:
                    rule.hits += 1
                    return rule
        return None


# ---------------------------------------------------------------------- bad data
@dataclass
class CorruptRule:
    """Rewrite the records of matching 2xx JSON answers: bad data on demand.

    A record is any JSON object (at any depth of the body) holding the key
    ``where``. On each of the first ``count`` records (None: all) the rule sets
    ``field`` to ``value`` (any JSON; a new field is added), removes it with
    ``delete``, or with ``field="*"`` sets every key but ``where`` to ``value``.
    ``body`` instead replaces the whole answer with that text (a non-JSON body with
    status 200, e.g. an HTML page). Generic on purpose: one mechanism serves every
    API (``tests/reliability/test_bad_data.py``).
    """

    api: str = "*"
    path_contains: str | None = None
    field: str | None = None
    value: Any = None
    delete: bool = False
    where: str | None = None
    count: int | None = None
    body: str | None = None
    hits: int = 0

    def __post_init__(self) -> None:
        if self.body is None and not self.field:
            raise ValueError("a corrupt rule needs `field` (with value or delete) or `body`")

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("api", "path_contains", "field", "value", "delete", "where", "count", "body", "hits")}

    def _room(self) -> bool:
        return self.count is None or self.hits < self.count

    def _edit(self, record: dict[str, Any]) -> None:
        self.hits += 1
        if self.field == "*":
            for key in list(record):
                if key != (self.where or ""):
                    record[key] = self.value
        elif self.delete:
            record.pop(self.field, None)
        else:
            record[self.field] = self.value  # type: ignore[index]

    def apply(self, body: Any) -> Any:
        key = self.where or self.field
        pending = [body]
        while pending and self._room():
            node = pending.pop(0)
            if isinstance(node, dict):
                if key in node and self._room():
                    self._edit(node)
                    continue
                pending.extend(node.values())
            elif isinstance(node, list):
                pending.extend(node)
        return body


class Corruptor:
    """The active bad-data rules (``/_sandbox/corrupt``); cleared by reset."""

    def __init__(self) -> None:
        self._rules: list[CorruptRule] = []
        self._lock = threading.Lock()

    def add(self, rule: CorruptRule) -> None:
        with self._lock:
            self._rules.append(rule)

    def clear(self) -> None:
        with self._lock:
            self._rules = []

    def rules(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.as_dict() for r in self._rules]

    def apply(self, api: str, path: str, response: Response) -> Response:
        if not 200 <= response.status < 300 or not self._rules:
            return response
        if isinstance(response.body, (bytes, bytearray)) and not isinstance(response.body, JSONBytes):
            return response
        with self._lock:
            for rule in self._rules:
                if rule.api not in ("*", api) or (rule.path_contains and rule.path_contains not in path):
                    continue
                if rule.body is not None:
                    if rule._room():
                        rule.hits += 1
                        return Response(response.status, rule.body.encode(), {"Content-Type": "text/html; charset=utf-8"})
                    continue
                # A deep copy: handlers may answer with objects the store keeps.
                response = Response(response.status, rule.apply(json.loads(response.encode())), response.headers)
        return response


# ----------------------------------------------------------------------- request log


def redact_query(query: dict[str, list[str]]) -> dict[str, str]:
    return {k: ("***" if k in SECRET_QUERY_PARAMS else v[-1]) for k, v in query.items()}


def redact_headers(headers: dict[str, str]) -> dict[str, str]:
    return {k: ("***" if k in SECRET_HEADERS else v) for k, v in headers.items()}


class RequestLog:
    """Every request an emulated route saw, numbered, secrets masked."""

    def __init__(self, maxlen: int = 200_000) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=maxlen)
        self._seq = 0
        self._lock = threading.Lock()

    def add(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._seq += 1
            entry["seq"] = self._seq
            self._entries.append(entry)

    def entries(self, api: str | None = None, since: int = 0) -> list[dict[str, Any]]:
        with self._lock:
            return [e for e in self._entries if e["seq"] > since and (api is None or e["api"] == api)]

    def last_seq(self) -> int:
        with self._lock:
            return self._seq

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def parse_query(raw: str) -> dict[str, list[str]]:
    return parse_qs(raw, keep_blank_values=True)


def monotonic() -> float:
    return time.monotonic()
