"""One HTTP process serving every emulator under its own path prefix, plus the
control endpoints under ``/_sandbox``.

Emulated routes:  ``/<prefix>/...``  (``/listenloop``, ``/marin_social``,
``/inboxfirst``, ``/loops``, ``/retreaver``, ``/retreaver_calls``, ``/fx``)
Control routes:   ``/_sandbox/...``  (never subject to faults, never logged)

    GET    /_sandbox/health
    GET    /_sandbox/clock                      {"now", "start"}
    GET    /_sandbox/env                        environment variables for the sources
    POST   /_sandbox/reset      {seed?, scale?, now?, doc_shapes?}
    POST   /_sandbox/advance    {days}          move the clock forward
    GET    /_sandbox/faults                     current fault rules
    POST   /_sandbox/faults     {kind, api?, rate?, count?, retry_after?, delay?, path_contains?, advance_hours?}
    DELETE /_sandbox/faults
    GET    /_sandbox/requests?api=&since=       the request log (secrets masked)
    DELETE /_sandbox/requests
    GET    /_sandbox/truth?api=                 totals a correct pipeline must reach
    GET    /_sandbox/corrupt                    current bad-data rules
    POST   /_sandbox/corrupt    {api?, path_contains?, field, value?, delete?, where?, count?} or {..., body}
    DELETE /_sandbox/corrupt

The standard library's ThreadingHTTPServer is enough here and, unlike a WSGI
framework, lets a fault drop the connection or cut a body short on purpose.
"""

from __future__ import annotations

import importlib
import json
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from sandbox.core import (
    STATUS_FAULTS,
    Corruptor,
    CorruptRule,
    Emulator,
    FaultInjector,
    FaultRule,
    HTTPError,
    Request,
    RequestLog,
    Response,
    parse_query,
    redact_headers,
    redact_query,
)
from sandbox.world import World

# api name -> "module:Class"; imported lazily so one emulator's import error names it.
EMULATORS: dict[str, str] = {
    "listenloop": "sandbox.listenloop:ListenLoopEmulator",
    "marin_social": "sandbox.marin_social:MarinSocialEmulator",
    "inboxfirst": "sandbox.inboxfirst:InboxFirstEmulator",
    "loops": "sandbox.loops:LoopsEmulator",
    "retreaver": "sandbox.retreaver:RetreaverEmulator",
    "fx": "sandbox.fx:FxEmulator",
}


HTML_ERROR_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n"
    b"<body><h1>Bad Gateway</h1><p>The upstream server is temporarily unavailable.</p></body></html>\n"
)


def _load(spec: str) -> type[Emulator]:
    module, _, cls = spec.partition(":")
    return getattr(importlib.import_module(module), cls)


def parse_now(value: str | None) -> datetime | None:
    if not value:
        return None
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


class Sandbox:
    """The world, its emulators, faults and request log: everything but HTTP."""

    def __init__(
        self,
        seed: int = 42,
        scale: float = 1.0,
        now: datetime | None = None,
        apis: list[str] | None = None,
        doc_shapes: bool = False,
    ):
        self.doc_shapes = doc_shapes
        self.apis = apis or list(EMULATORS)
        self.faults = FaultInjector(seed)
        self.corruptions = Corruptor()
        self.log = RequestLog()
        self._lock = threading.RLock()
        self.emulators: dict[str, Emulator] = {}
        self.routes: dict[str, tuple[Emulator, Any]] = {}
        self.reset(seed, scale, now)

    def reset(
        self, seed: int | None = None, scale: float | None = None, now: datetime | None = None, doc_shapes: bool | None = None
    ) -> None:
        with self._lock:
            if doc_shapes is not None:
                self.doc_shapes = bool(doc_shapes)
            old = getattr(self, "world", None)
            seed = seed if seed is not None else (old.seed if old else 42)
            scale = scale if scale is not None else (old.scale if old else 1.0)
            if now is None:
                now = getattr(self, "initial_now", None)
            world = {"seed": seed, "scale": scale, "doc_shapes": self.doc_shapes}
            new_world = World(now=now, **world) if now else World(**world)
            # The new emulators are built before the old ones go: a request that
            # arrives meanwhile is served by the old world, not by a closed store.
            emulators = {api: _load(EMULATORS[api])(new_world) for api in self.apis}
            routes = {prefix: (emulator, router) for emulator in emulators.values() for prefix, router in emulator.prefixes.items()}
            retired = self.emulators.values()
            self.world, self.initial_now = new_world, new_world.now
            self.emulators, self.routes = emulators, routes
            for emulator in retired:
                # Under its lock: closing sqlite under a running query crashed the
                # process (a segfault, with requests in flight during a reset).
                with emulator.lock:
                    emulator.close()
            self.faults = FaultInjector(seed)
            self.corruptions.clear()
            self.log.clear()

    def advance(self, days: float) -> None:
        if days <= 0:
            raise ValueError("days must be > 0")
        with self._lock:
            old_now = self.world.now
            new_now = old_now + timedelta(days=days)
            for emulator in self.emulators.values():
                with emulator.lock:
                    emulator.advance(old_now, new_now)
            self.world.now = new_now

    def env(self, base_url: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for emulator in self.emulators.values():
            out.update(emulator.env(base_url))
        return out

    def truth(self, api: str | None = None) -> dict[str, Any]:
        with self._lock:
            names = [api] if api else list(self.emulators)
            out = {}
            for name in names:
                emulator = self.emulators[name]
                with emulator.lock:
                    out[name] = emulator.truth()
            return out

    def close(self) -> None:
        for emulator in self.emulators.values():
            with emulator.lock:
                emulator.close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # A reply can go out in several segments (a truncated body, a large page);
    # with Nagle on, a kept-alive connection waits ~40 ms on the delayed ACK.
    disable_nagle_algorithm = True
    server: SandboxHTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
        if self.server.verbose:
            super().log_message(format, *args)

    # One handler for every verb.
    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _handle(self) -> None:
        parts = urlsplit(self.path)
        path = parts.path
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        segments = path.lstrip("/").split("/", 1)
        prefix = segments[0]
        rest = "/" + (segments[1] if len(segments) > 1 else "")
        host = self.headers.get("Host") or f"{self.server.server_address[0]}:{self.server.server_address[1]}"
        request = Request(self.command, rest, parse_query(parts.query), headers, body, base_url=f"http://{host}/{prefix}")

        if prefix == "_sandbox":
            try:
                response = self.server.control(request)
            except HTTPError as exc:
                response = Response(exc.status, exc.body, exc.headers)
            except (ValueError, TypeError, KeyError) as exc:
                response = Response(400, {"error": str(exc)})
            self._send(response)
            return

        sandbox = self.server.sandbox
        target = sandbox.routes.get(prefix)
        if target is None:
            self._send(Response(404, {"error": f"unknown API prefix /{prefix}"}))
            return
        emulator, router = target
        entry = {
            "at": datetime.now(UTC).isoformat(),
            "api": emulator.name,
            "prefix": prefix,
            "method": self.command,
            "path": rest,
            "query": redact_query(request.query),
            "headers": redact_headers(headers),
            "fault": None,
        }
        fault = sandbox.faults.pick(emulator.name, rest)
        if fault is not None:
            entry["fault"] = fault.kind
        if fault is not None and fault.kind in STATUS_FAULTS:
            extra = {"Retry-After": str(fault.retry_after)} if fault.kind == "429" and fault.retry_after is not None else {}
            response = Response(int(fault.kind), {"error": "injected fault"}, extra)
            entry["status"] = response.status
            sandbox.log.add(entry)
            self._send(response)
            return
        if fault is not None and fault.kind == "drop":
            entry["status"] = None
            sandbox.log.add(entry)
            self._drop()
            return
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.delay)
        if fault is not None and fault.kind == "html200":
            # What a proxy, CDN or maintenance page in front of the vendor answers.
            entry["status"] = 200
            sandbox.log.add(entry)
            self._send(Response(200, HTML_ERROR_PAGE, {"Content-Type": "text/html; charset=utf-8"}))
            return
        if fault is not None and fault.kind == "advance":
            sandbox.advance(fault.advance_hours / 24)  # the world moves on mid-walk

        try:
            with emulator.lock:
                response = router.dispatch(request)
        except HTTPError as exc:
            response = Response(exc.status, exc.body, exc.headers)
        except Exception as exc:  # an emulator bug must answer 500, not kill the thread
            response = Response(500, {"error": f"sandbox error: {type(exc).__name__}: {exc}"})
        response = sandbox.corruptions.apply(emulator.name, rest, response)
        entry["status"] = response.status
        sandbox.log.add(entry)
        truncate = fault is not None and fault.kind == "truncate"
        self._send(response, truncate=truncate)
        if response.after is not None and not truncate:
            try:
                with emulator.lock:
                    response.after()
            except Exception as exc:  # the answer is out; read-ahead is only a saving
                if self.server.verbose:
                    self.log_error("read-ahead failed: %r", exc)

    def _send(self, response: Response, truncate: bool = False) -> None:
        payload = response.encode()
        self.send_response(response.status)
        headers = {"Content-Type": "application/json; charset=utf-8", **response.headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        if truncate:
            self.send_header("Connection", "close")
        if truncate:
            self.end_headers()
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            self._drop()
            return
        if self.request_version == "HTTP/0.9":  # no header buffer to join the body to
            self.end_headers()
            self.wfile.write(payload)
            return
        # Headers and body in one write: one send() a request instead of two (what
        # end_headers() then write() did; the same bytes).
        self._headers_buffer.append(b"\r\n")
        self._headers_buffer.append(payload)
        self.flush_headers()

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, sandbox: Sandbox, host: str = "127.0.0.1", port: int = 8765, verbose: bool = False):
        self.sandbox = sandbox
        self.verbose = verbose
        super().__init__((host, port), _Handler)

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (a timeout, a killed run) is not a sandbox error:
        # no traceback for it on stderr.
        import sys

        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)

    def control(self, request: Request) -> Response:
        sandbox = self.sandbox
        route = (request.method, request.path.rstrip("/") or "/")
        payload = request.json() or {}
        if route == ("GET", "/health"):
            return Response(200, {"status": "ok", "apis": list(sandbox.emulators), "doc_shapes": sandbox.world.doc_shapes})
        if route == ("GET", "/clock"):
            return Response(200, {"now": sandbox.world.now.isoformat(), "start": sandbox.world.start.isoformat()})
        if route == ("GET", "/env"):
            return Response(200, sandbox.env(self.base_url))
        if route == ("POST", "/reset"):
            sandbox.reset(payload.get("seed"), payload.get("scale"), parse_now(payload.get("now")), payload.get("doc_shapes"))
            world = sandbox.world
            return Response(200, {"now": world.now.isoformat(), "seed": world.seed, "scale": world.scale, "doc_shapes": world.doc_shapes})
        if route == ("POST", "/advance"):
            sandbox.advance(float(payload.get("days", request.arg("days", "1"))))
            return Response(200, {"now": sandbox.world.now.isoformat()})
        if route == ("GET", "/faults"):
            return Response(200, sandbox.faults.rules())
        if route == ("POST", "/faults"):
            rules = payload if isinstance(payload, list) else [payload]
            allowed = {"kind", "api", "rate", "count", "retry_after", "delay", "path_contains", "advance_hours"}
            for rule in rules:
                unknown = set(rule) - allowed
                if unknown:
                    raise ValueError(f"unknown fault fields: {sorted(unknown)}")
                sandbox.faults.add(FaultRule(**rule))
            return Response(201, sandbox.faults.rules())
        if route == ("DELETE", "/faults"):
            sandbox.faults.set([])
            return Response(200, [])
        if route == ("GET", "/corrupt"):
            return Response(200, sandbox.corruptions.rules())
        if route == ("POST", "/corrupt"):
            for rule in payload if isinstance(payload, list) else [payload]:
                sandbox.corruptions.add(CorruptRule(**{k: v for k, v in rule.items() if k != "hits"}))
            return Response(201, sandbox.corruptions.rules())
        if route == ("DELETE", "/corrupt"):
            sandbox.corruptions.clear()
            return Response(200, [])
        if route == ("GET", "/requests"):
            since = int(request.arg("since", "0") or 0)
            return Response(200, sandbox.log.entries(request.arg("api"), since))
        if route == ("DELETE", "/requests"):
            sandbox.log.clear()
            return Response(200, [])
        if route == ("GET", "/truth"):
            api = request.arg("api")
            if api and api not in sandbox.emulators:
                raise HTTPError(404, {"error": f"unknown api {api!r}"})
            return Response(200, sandbox.truth(api))
        raise HTTPError(404, {"error": f"no control route {request.method} {request.path}"})


class SandboxThread:
    """Runs the sandbox server in a background thread (tests, the demo)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **world: Any):
        self.sandbox = Sandbox(**world)
        self.httpd = SandboxHTTPServer(self.sandbox, host, port)
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="sandbox", daemon=True)

    @property
    def base_url(self) -> str:
        return self.httpd.base_url

    def env(self) -> dict[str, str]:
        return self.sandbox.env(self.base_url)

    def __enter__(self) -> SandboxThread:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def start(self) -> SandboxThread:
        return self.__enter__()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.sandbox.close()


def format_env(env: dict[str, str]) -> str:
    return "\n".join(f"export {k}={json.dumps(v) if any(c in v for c in ' ,') else v}" for k, v in sorted(env.items()))
