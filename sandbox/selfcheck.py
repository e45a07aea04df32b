"""Call each emulated API once, exactly as a client configured from the printed
environment would, and report what came back.

Used by ``marketing-etl sandbox --check``: proof on a fresh machine that the
sandbox serves every API with the credentials it advertises.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests


def _count(body: Any) -> int:
    if isinstance(body, list):
        return len(body)
    if isinstance(body, dict):
        data = body.get("data")
        if isinstance(data, list):
            return len(data)
    return 1


def _calls(env: dict[str, str], http: requests.Session) -> list[tuple[str, Callable[[], requests.Response]]]:
    def get(url: str, **kwargs: Any) -> Callable[[], requests.Response]:
        return lambda: http.get(url, timeout=30, **kwargs)

    ll, ms, ib, lp, rt = (
        "SOURCES__LISTENLOOP__",
        "SOURCES__MARIN_SOCIAL__",
        "SOURCES__INBOXFIRST__",
        "SOURCES__LOOPS__",
        "SOURCES__RETREAVER__",
    )
    checks: list[tuple[str, Callable[[], requests.Response]]] = []
    if ll + "BASE_URL" in env:
        checks.append(
            (
                "listenloop   GET /campaigns",
                get(
                    env[ll + "BASE_URL"] + "/campaigns",
                    headers={"X-User-Token": env[ll + "API_KEY"], "X-User-Email": env[ll + "EMAIL"]},
                ),
            )
        )
    if ms + "BASE_URL" in env:
        checks.append(("marin_social GET /campaigns", get(env[ms + "BASE_URL"] + "/campaigns", params={"key": env[ms + "API_KEY"]})))
    if ib + "BASE_URL" in env:
        first_list = env[ib + "MAILING_LIST_IDS"].split(",")[0]
        checks.append(
            (
                f"inboxfirst   GET /ga/api/v2/mailing_lists/{first_list}/campaigns",
                get(
                    env[ib + "BASE_URL"] + f"/ga/api/v2/mailing_lists/{first_list}/campaigns",
                    auth=(env[ib + "USERNAME"], env[ib + "API_KEY"]),
                ),
            )
        )
    if lp + "BASE_URL" in env:
        checks.append(
            (
                "loops        GET /api/v1/contacts/find",
                get(
                    env[lp + "BASE_URL"] + "/api/v1/contacts/find",
                    params={"email": "nobody@example.test"},
                    headers={"Authorization": f"Bearer {env[lp + 'API_KEY']}"},
                ),
            )
        )
    if rt + "BASE_URL" in env:
        creds = {"api_key": env[rt + "API_KEY"], "company_id": env[rt + "COMPANY_ID"]}
        checks.append(("retreaver    GET /campaigns.json", get(env[rt + "BASE_URL"] + "/campaigns.json", params=creds)))
        checks.append(("retreaver    GET /api/v2/calls.json", get(env[rt + "CALLS_BASE_URL"] + "/api/v2/calls.json", params=creds)))
    if "SOURCES__FX__BASE_URL" in env:  # keyless
        checks.append(("fx           GET /latest", get(env["SOURCES__FX__BASE_URL"] + "/latest")))
    return checks


def run_selfcheck(base_url: str, env: dict[str, str]) -> bool:
    ok = True
    with requests.Session() as http:
        for label, call in _calls(env, http):
            response = call()
            good = response.status_code == 200
            ok &= good
            rows = _count(response.json()) if good else 0
            print(f"{'ok  ' if good else 'FAIL'} {label:<55} HTTP {response.status_code}, {rows} records")
        truth = http.get(f"{base_url}/_sandbox/truth", timeout=60)
        ok &= truth.status_code == 200
        print(f"{'ok  ' if truth.ok else 'FAIL'} truth endpoint: " + ", ".join(f"{api}: {len(v)} entities" for api, v in truth.json().items()))
    return ok
