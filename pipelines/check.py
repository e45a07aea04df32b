"""Configuration checks: offline ones before a run touches anything (``preflight``)
and ``marketing-etl check``: one cheap request per configured source.

Why a probe table and not the source objects: a dlt source is a set of lazy
resources whose first request depends on pagination, parents and state (Marin
Social reads /accounts then every media plan, Loops reads the warehouse first).
"One request" is easier to promise with the cheapest documented endpoint of each
API, called with the same settings (``SOURCES__<SOURCE>__...``), the same auth
scheme and the same defaults as the source. The source factory is still called
first (without extracting) so that a setting the source rejects is reported here
exactly as ``run`` would report it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

OK, AUTH_REFUSED, UNREACHABLE, MISCONFIGURED, NOT_CONFIGURED = "ok", "auth refused", "unreachable", "misconfigured", "not configured"


@dataclass(frozen=True)
class Probe:
    """What one source needs and the one request that proves it works."""

    secrets: tuple[str, ...]  # settings that must all be set (any set: the source is configured)
    required_config: tuple[str, ...] = ()  # non-secret settings without a default
    urls: dict[str, str | None] = field(default_factory=dict)  # base URL settings -> default
    dates: tuple[str, ...] = ()  # ISO date settings
    request: Callable[[dict[str, Any]], tuple[str, dict[str, Any]]] | None = None  # settings -> (url, requests kwargs)
    key_fields: tuple[str, ...] = ("api_key",)  # the secrets to mask


def _join(base: str, path: str) -> str:
    return base.rstrip("/") + "/" + path.lstrip("/")


def _listenloop(s: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    # The campaign index, one row (doc: per_page; the source's only endpoint).
    return _join(s["base_url"], "campaigns"), {"params": {"per_page": 1, "page": 1}, "headers": {"X-User-Token": s["api_key"], "X-User-Email": s["email"]}}


def _marin(s: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    # Doc "Authentication": `key` in the query; /accounts is the smallest list.
    return _join(s["base_url"], "accounts"), {"params": {"key": s["api_key"], "limit": 1}}


def _inboxfirst(s: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    from sources.inboxfirst.helpers import parse_mailing_list_ids
    from sources.inboxfirst.settings import API_PREFIX

    # The first configured list's sends started from now on: none, one small answer
    # (contract: no endpoint lists mailing lists, so a configured id is the cheapest).
    first = parse_mailing_list_ids(s["mailing_list_ids"])[0]
    since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    url = _join(s["base_url"], f"{API_PREFIX}mailing_lists/{first}/campaigns")
    return url, {"params": {"started_at__start": since}, "auth": (str(s["username"]), s["api_key"])}


def _retreaver(s: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    # Doc "Company": one object, with the same api_key/company_id query auth.
    params = {"api_key": s["api_key"], **({"company_id": str(s["company_id"])} if s.get("company_id") else {})}
    return _join(s["base_url"], "company.json"), {"params": params}


def _loops(s: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    # Doc "Find": [] for an unknown email; the Bearer key is checked first.
    return _join(s["base_url"], "api/v1/contacts/find"), {"params": {"email": "check@example.com"}, "headers": {"Authorization": f"Bearer {s['api_key']}"}}


def _fx(s: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    # Frankfurter's latest fixing, one currency: keyless.
    return _join(s["base_url"], "latest"), {"params": {"symbols": "USD"}}


def _probes() -> dict[str, Probe]:
    from sources.listenloop.settings import DEFAULT_BASE_URL as LISTENLOOP
    from sources.loops.settings import DEFAULT_BASE_URL as LOOPS
    from sources.marin_social.settings import DEFAULT_BASE_URL as MARIN
    from sources.retreaver.settings import DEFAULT_BASE_URL as RETREAVER
    from sources.retreaver.settings import DEFAULT_CALLS_BASE_URL as RETREAVER_CALLS

    try:
        from sources.fx.settings import DEFAULT_BASE_URL as FX
    except Exception:  # noqa: BLE001 - the FX source is optional here
        FX = None
    return {
        "listenloop": Probe(("api_key", "email"), urls={"base_url": LISTENLOOP}, request=_listenloop),
        "marin_social": Probe(("api_key",), urls={"base_url": MARIN}, dates=("start_date",), request=_marin),
        "inboxfirst": Probe(("username", "api_key"), ("base_url", "mailing_list_ids"), urls={"base_url": None}, dates=("start_date",), request=_inboxfirst),
        "retreaver": Probe(("api_key",), urls={"base_url": RETREAVER, "calls_base_url": RETREAVER_CALLS}, dates=("start_date",), request=_retreaver),
        "loops": Probe(("api_key",), urls={"base_url": LOOPS}, request=_loops),
        "fx": Probe((), urls={"base_url": FX}, dates=("start_date",), request=_fx, key_fields=()),
    }


def _setting(source: str, key: str, secret: bool = False) -> Any:
    import dlt

    value = (dlt.secrets if secret else dlt.config).get(f"sources.{source}.{key}")
    if value is None and not secret:
        value = dlt.secrets.get(f"sources.{source}.{key}")
    return None if value in (None, "") else value


def disabled(source: str) -> bool:
    import dlt

    return str(dlt.config.get(f"sources.{source}.enabled")).strip().lower() in ("false", "0", "no", "off")


def settings_problem() -> str | None:
    """A ``.dlt/config.toml`` or ``secrets.toml`` that cannot be read (dlt raises on
    first use, from deep inside, with a traceback): one line instead."""
    try:
        import dlt

        dlt.config.get("runtime.log_level")
        dlt.secrets.get("sources.check")
    except Exception as exc:  # noqa: BLE001 - dlt's TomlProviderReadException and friends
        text = " ".join(str(exc).split())
        return f"cannot read the settings: {text[:300]}"
    return None


def url_problem(name: str, value: Any) -> str | None:
    text = str(value)
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError as exc:
        return f"{name} {text!r} is not a URL ({exc})"
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in text):
        return f"{name} {text!r} is not an http(s):// URL with a host"
    return None


def date_problem(name: str, value: Any, today: date) -> str | None:
    text = str(value)
    try:
        day = date.fromisoformat(text[:10])
        if len(text) > 10:
            datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return f"{name} {text!r} is not a date (YYYY-MM-DD)"
    if day > today:
        return f"{name} {day} is in the future: there is nothing to load yet"
    if day.year < 2000:
        return f"{name} {day} is before 2000: not a date these APIs have data for"
    return None


def env_name(source: str, key: str) -> str:
    return f"SOURCES__{source.upper()}__{key.upper()}"


def source_settings(source: str) -> tuple[str | None, dict[str, Any]]:
    """(``not configured`` / a misconfiguration / None, the resolved settings).

    Mirrors the runner: a source with none of its secrets is not configured (run
    skips it); one with some but not all is a configuration error, as is a malformed
    base URL or an impossible start date.
    """
    probe = _probes()[source]
    settings: dict[str, Any] = {}
    for key in probe.secrets:
        settings[key] = _setting(source, key, secret=True)
    for key in probe.required_config:
        settings[key] = _setting(source, key)
    missing = [env_name(source, k) for k in (*probe.secrets, *probe.required_config) if settings.get(k) is None]
    if probe.secrets and all(settings.get(k) is None for k in probe.secrets):
        return NOT_CONFIGURED, settings
    if missing:
        return f"{', '.join(missing)} missing (the other settings of {source} are set)", settings
    for key, default in probe.urls.items():
        value = settings.get(key) or _setting(source, key) or default
        settings[key] = value
        problem = url_problem(env_name(source, key), value) if value is not None else f"{env_name(source, key)} missing"
        if problem:
            return problem, settings
    today = datetime.now(UTC).date()
    for key in probe.dates:
        value = _setting(source, key)
        problem = date_problem(env_name(source, key), value, today) if value is not None else None
        if problem:
            return problem, settings
    settings["company_id"] = _setting(source, "company_id") if source == "retreaver" else None
    return None, settings


def warehouse_problem(warehouse: str | Path) -> str | None:
    """A local warehouse file the run could not write (checked before the lock
    file beside it is created, so nothing is left behind)."""
    from pipelines.warehouse import is_local_duckdb

    if not is_local_duckdb():
        return None
    path = Path(warehouse)
    if path.exists():
        if path.is_dir():
            return f"the warehouse {path} is a directory, not a DuckDB file"
        if not os.access(path, os.R_OK | os.W_OK):
            return f"the warehouse {path} is not writable"
    parent = path.resolve().parent
    if not parent.is_dir():
        return f"the warehouse's directory {parent} does not exist"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"the warehouse's directory {parent} is not writable (DuckDB writes a .wal file beside it)"
    data_dir = os.environ.get("DLT_DATA_DIR")
    if data_dir and Path(data_dir).exists() and not os.access(data_dir, os.W_OK | os.X_OK):
        return f"DLT_DATA_DIR {data_dir} is not writable"
    return None


def preflight(names: list[str], warehouse: str | Path | None) -> list[str]:
    """Every configuration error of a run, found without a request or a write; and
    the plain-http warnings, logged once. Empty: the run may start."""
    from sources._shared.http import warn_plain_http

    problems = [p for p in (settings_problem(),) if p]
    if problems:
        return problems
    if warehouse is not None:
        problem = warehouse_problem(warehouse)
        if problem:
            problems.append(problem)
    probes = _probes()
    for name in names:
        if name not in probes or disabled(name):
            continue
        problem, settings = source_settings(name)
        if problem == NOT_CONFIGURED:
            continue
        if problem:
            problems.append(f"{name}: {problem}")
            continue
        if probes[name].key_fields:
            for key in probes[name].urls:
                warn_plain_http(name, str(settings.get(key) or ""))
    return problems


@dataclass
class CheckResult:
    source: str
    status: str  # ok | auth refused | unreachable | misconfigured | not configured
    detail: str = ""
    endpoint: str = ""
    http_status: int | None = None
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _probe(name: str, settings: dict[str, Any], timeout: float) -> CheckResult:
    import requests

    from sources._shared.http import Redactor, warn_plain_http

    probe = _probes()[name]
    redact = Redactor([settings.get(k) for k in probe.key_fields])
    url, kwargs = probe.request(settings)  # type: ignore[misc]
    endpoint = f"GET {urlsplit(url).path}"
    if probe.key_fields:
        warn_plain_http(name, url)
    started = time.monotonic()

    def result(status: str, detail: str, http_status: int | None = None) -> CheckResult:
        return CheckResult(name, status, redact(" ".join(detail.split()))[:300], endpoint, http_status, round(time.monotonic() - started, 3))

    try:
        # No retries: a check answers in seconds. TLS verification stays on (requests' default).
        response = requests.get(url, timeout=timeout, allow_redirects=False, **kwargs)
    except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema) as exc:
        return result(MISCONFIGURED, f"the URL is invalid: {type(exc).__name__}")
    except requests.exceptions.SSLError as exc:
        return result(UNREACHABLE, f"TLS failed (certificate not trusted?): {type(exc).__name__}")
    except requests.exceptions.Timeout:
        return result(UNREACHABLE, f"no answer within {timeout:g} s")
    except requests.exceptions.ConnectionError as exc:
        reason = "host not found" if "resolve" in str(exc).lower() or "name or service" in str(exc).lower() else "connection refused or dropped"
        return result(UNREACHABLE, f"{reason} ({urlsplit(url).netloc})")
    code = response.status_code
    if code in (401, 403):
        keys = ", ".join(env_name(name, k) for k in probe.secrets)
        return result(AUTH_REFUSED, f"answered {code}: check {keys}", code)
    if code == 429 or code >= 500:
        return result(UNREACHABLE, f"answered {code}: the service is failing or throttling; try again", code)
    if not 200 <= code < 300:
        where = f" (redirected to {urlsplit(response.headers.get('Location', '')).netloc or '?'})" if 300 <= code < 400 else ""
        return result(MISCONFIGURED, f"answered {code}{where}: check {env_name(name, 'base_url')}", code)
    try:
        response.json()
    except ValueError:
        kind = response.headers.get("Content-Type", "?").split(";")[0]
        return result(MISCONFIGURED, f"answered {code} with a non-JSON body ({kind}): is {env_name(name, 'base_url')} the API's address?", code)
    return result(OK, f"answered {code}", code)


def check_sources(names: list[str], timeout: float = 10.0) -> list[CheckResult]:
    """One request per configured source (none for the others); loads nothing."""
    from pipelines.runner import SERVES_OTHERS

    probes = _probes()
    results: dict[str, CheckResult] = {}
    settings_of: dict[str, dict[str, Any]] = {}
    for name in names:
        if disabled(name):
            results[name] = CheckResult(name, NOT_CONFIGURED, f"disabled ({env_name(name, 'enabled')}=false)")
            continue
        problem, settings = source_settings(name)
        if problem == NOT_CONFIGURED:
            keys = ", ".join(env_name(name, k) for k in (*probes[name].secrets, *probes[name].required_config))
            results[name] = CheckResult(name, NOT_CONFIGURED, f"missing {keys}")
        elif problem:
            results[name] = CheckResult(name, MISCONFIGURED, problem)
        else:
            settings_of[name] = settings
    # As in a run: a source that only serves the others is not checked alone.
    others = [n for n in names if n not in SERVES_OTHERS]
    for name in [n for n in settings_of if n in SERVES_OTHERS]:
        if others and all(results.get(n) is not None and results[n].status == NOT_CONFIGURED for n in others):
            results[name] = CheckResult(name, NOT_CONFIGURED, "nothing to serve: no other source is configured")
            settings_of.pop(name)
    for name, settings in settings_of.items():
        problem = _build_problem(name, settings)
        results[name] = CheckResult(name, MISCONFIGURED, problem) if problem else _probe(name, settings, timeout)
    return [results[n] for n in names]


def _build_problem(name: str, settings: dict[str, Any]) -> str | None:
    """Build the source as ``run`` would (no request is made: dlt resources are
    lazy) so that a setting the source itself rejects is reported here too."""
    from pipelines.runner import _load_source, describe_error
    from sources._shared.http import Redactor

    try:
        _load_source(name)()
    except Exception as exc:  # noqa: BLE001 - any rejection is a configuration error
        return Redactor([settings.get(k) for k in _probes()[name].key_fields])(describe_error(exc))
    return None
