"""The sandbox's shared machinery: control endpoints, faults, request log, CLI.

Driven through plain HTTP against the ListenLoop and Retreaver routes; the
per-API behaviour is tested in test_<api>.py.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import requests

EXPECTED_ENV = {
    "SOURCES__LISTENLOOP__BASE_URL",
    "SOURCES__LISTENLOOP__API_KEY",
    "SOURCES__LISTENLOOP__EMAIL",
    "SOURCES__MARIN_SOCIAL__BASE_URL",
    "SOURCES__MARIN_SOCIAL__API_KEY",
    "SOURCES__INBOXFIRST__BASE_URL",
    "SOURCES__INBOXFIRST__USERNAME",
    "SOURCES__INBOXFIRST__API_KEY",
    "SOURCES__INBOXFIRST__MAILING_LIST_IDS",
    "SOURCES__LOOPS__BASE_URL",
    "SOURCES__LOOPS__API_KEY",
    "SOURCES__RETREAVER__BASE_URL",
    "SOURCES__RETREAVER__CALLS_BASE_URL",
    "SOURCES__RETREAVER__API_KEY",
    "SOURCES__RETREAVER__COMPANY_ID",
    "SOURCES__FX__BASE_URL",
}


def listenloop_get(sandbox, path: str = "/campaigns", **kwargs) -> requests.Response:
    env = sandbox.env()
    headers = {"X-User-Token": env["SOURCES__LISTENLOOP__API_KEY"], "X-User-Email": env["SOURCES__LISTENLOOP__EMAIL"]}
    return requests.get(env["SOURCES__LISTENLOOP__BASE_URL"] + path, headers=headers, timeout=10, **kwargs)


def test_env_names_every_variable_the_sources_read(sandbox):
    env = sandbox.env()
    assert EXPECTED_ENV <= set(env)
    for name in EXPECTED_ENV:
        assert env[name], name
    assert env["SOURCES__RETREAVER__BASE_URL"].endswith("/retreaver")
    assert env["SOURCES__RETREAVER__CALLS_BASE_URL"].endswith("/retreaver_calls")


def test_health_clock_and_unknown_prefix(sandbox):
    assert requests.get(sandbox.base_url + "/_sandbox/health", timeout=5).json()["status"] == "ok"
    clock = sandbox.clock()
    assert clock["start"] < clock["now"]
    response = requests.get(sandbox.base_url + "/nosuchapi/things", timeout=5)
    assert response.status_code == 404
    assert requests.get(sandbox.base_url + "/_sandbox/nothing", timeout=5).status_code == 404


def test_advance_moves_the_clock_and_rejects_non_positive_days(sandbox):
    before = sandbox.clock()["now"]
    after = sandbox.advance(2)["now"]
    assert after > before
    assert requests.post(sandbox.base_url + "/_sandbox/advance", json={"days": 0}, timeout=5).status_code == 400
    sandbox.reset()
    assert sandbox.clock()["now"] == before  # reset goes back to the initial clock


def test_truth_covers_every_api_and_is_deterministic(sandbox):
    truth = sandbox.truth()
    assert set(truth) == {"listenloop", "marin_social", "inboxfirst", "loops", "retreaver", "fx"}
    sandbox.reset()
    assert sandbox.truth() == truth
    assert sandbox.truth("loops") == {"loops": truth["loops"]}
    assert requests.get(sandbox.base_url + "/_sandbox/truth", params={"api": "nope"}, timeout=5).status_code == 404


def test_a_different_seed_makes_a_different_world(sandbox):
    truth = sandbox.truth("retreaver")
    sandbox.reset(seed=8)
    assert sandbox.truth("retreaver") != truth


@pytest.mark.parametrize("kind", ["500", "502", "503"])
def test_server_error_faults(sandbox, kind):
    sandbox.add_fault(kind, api="listenloop", count=1)
    assert listenloop_get(sandbox).status_code == int(kind)
    assert listenloop_get(sandbox).status_code == 200  # count=1: only the first


def test_429_fault_carries_retry_after(sandbox):
    sandbox.add_fault("429", api="listenloop", count=2, retry_after=3)
    first = listenloop_get(sandbox)
    assert first.status_code == 429
    assert first.headers["Retry-After"] == "3"
    assert listenloop_get(sandbox).status_code == 429
    assert listenloop_get(sandbox).status_code == 200
    assert sandbox.faults()[0]["hits"] == 2


def test_drop_fault_closes_the_connection_without_an_answer(sandbox):
    sandbox.add_fault("drop", api="listenloop", count=1)
    with pytest.raises(requests.ConnectionError):
        listenloop_get(sandbox)
    assert listenloop_get(sandbox).status_code == 200


def test_truncate_fault_cuts_the_body_short(sandbox):
    sandbox.add_fault("truncate", api="listenloop", count=1)
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.ConnectionError)):
        listenloop_get(sandbox).json()
    assert listenloop_get(sandbox).status_code == 200


def test_slow_fault_delays_the_answer(sandbox):
    sandbox.add_fault("slow", api="listenloop", count=1, delay=0.6)
    started = time.monotonic()
    assert listenloop_get(sandbox).status_code == 200
    assert time.monotonic() - started >= 0.6


def test_faults_hit_only_their_api_and_path_and_share(sandbox):
    sandbox.add_fault("503", api="retreaver")
    assert listenloop_get(sandbox).status_code == 200
    sandbox.clear_faults()
    sandbox.add_fault("503", api="listenloop", path_contains="/campaigns/")
    assert listenloop_get(sandbox).status_code == 200  # the list route is not hit
    sandbox.clear_faults()
    sandbox.add_fault("500", api="listenloop", rate=0.5)
    statuses = [listenloop_get(sandbox).status_code for _ in range(60)]
    assert 15 <= statuses.count(500) <= 45  # seeded, so the same share every run


def test_bad_fault_rules_are_refused(sandbox):
    url = sandbox.base_url + "/_sandbox/faults"
    assert requests.post(url, json={"kind": "explode"}, timeout=5).status_code == 400
    assert requests.post(url, json={"kind": "500", "rate": 2}, timeout=5).status_code == 400
    assert requests.post(url, json={"kind": "500", "colour": "red"}, timeout=5).status_code == 400


def test_request_log_records_emulated_calls_with_secrets_masked(sandbox):
    env = sandbox.env()
    listenloop_get(sandbox, params={"page": 2})
    requests.get(
        env["SOURCES__RETREAVER__BASE_URL"] + "/campaigns.json",
        params={"api_key": env["SOURCES__RETREAVER__API_KEY"], "company_id": env["SOURCES__RETREAVER__COMPANY_ID"]},
        timeout=10,
    )
    log = sandbox.requests()
    assert [e["api"] for e in log] == ["listenloop", "retreaver"]  # control calls are not logged
    assert log[0]["query"] == {"page": "2"}
    assert log[0]["headers"]["x-user-token"] == "***"
    assert log[1]["query"]["api_key"] == "***"
    text = str(log)
    assert env["SOURCES__LISTENLOOP__API_KEY"] not in text
    assert env["SOURCES__RETREAVER__API_KEY"] not in text
    assert [e["api"] for e in sandbox.requests("retreaver")] == ["retreaver"]
    assert sandbox.requests(since=log[0]["seq"]) == log[1:]
    sandbox.clear_requests()
    assert sandbox.requests() == []


def test_reset_clears_faults_and_log(sandbox):
    sandbox.add_fault("500")
    listenloop_get(sandbox)
    sandbox.reset()
    assert sandbox.faults() == []
    assert sandbox.requests() == []
    assert listenloop_get(sandbox).status_code == 200


def test_cli_check_serves_every_api_and_exits_zero():
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "sandbox", "--port", "0", "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "export SOURCES__RETREAVER__CALLS_BASE_URL=" in out
    assert out.count("\nok  ") >= 6 and "FAIL" not in out
