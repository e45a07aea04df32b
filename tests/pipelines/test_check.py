"""`marketing-etl check`: one cheap request per configured source, nothing loaded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from pipelines.runner import SOURCE_NAMES


def check_cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.cli", "check", *args], capture_output=True, text=True, timeout=120, env=env, cwd=cwd)


def cli_env(extra: dict[str, str], tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOURCES__")}
    return {**env, "DLT_DATA_DIR": str(tmp_path / "dlt"), **extra}


def test_every_sandbox_source_is_ok_with_one_request_each_and_nothing_is_written(sandbox, tmp_path):
    before = sandbox.requests()
    result = check_cli("--json", env=cli_env(sandbox.env(), tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    doc = json.loads(result.stdout)
    assert [s["source"] for s in doc["sources"]] == list(SOURCE_NAMES)
    assert {s["status"] for s in doc["sources"]} == {"ok"}
    seen = sandbox.requests()[len(before):]
    assert sorted(e["api"] for e in seen) == sorted(SOURCE_NAMES)  # exactly one request per source
    # Loads nothing: no warehouse, no dlt pipeline, no lock file.
    assert not list(tmp_path.glob("*.duckdb*")) and not (tmp_path / "dlt").exists()


def test_each_way_of_failing_is_named_and_exits_2(sandbox, tmp_path):
    env = cli_env(
        {
            **sandbox.env(),
            "SOURCES__LOOPS__API_KEY": "sentinel-wrong-loops-key",
            "SOURCES__MARIN_SOCIAL__BASE_URL": "http://127.0.0.1:9/marin_social",  # closed port
            "SOURCES__RETREAVER__BASE_URL": "retreaver.example.com",  # no scheme
            "SOURCES__INBOXFIRST__BASE_URL": sandbox.url("nosuchapi"),  # answers 404
        },
        tmp_path,
    )
    env.pop("SOURCES__LISTENLOOP__API_KEY")
    env.pop("SOURCES__LISTENLOOP__EMAIL")
    result = check_cli("--json", env=env, cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    status = {s["source"]: s["status"] for s in json.loads(result.stdout)["sources"]}
    assert status == {
        "listenloop": "not configured",
        "marin_social": "unreachable",
        "inboxfirst": "misconfigured",
        "retreaver": "misconfigured",
        "loops": "auth refused",
        "fx": "ok",
    }
    assert "sentinel-wrong-loops-key" not in result.stdout + result.stderr
    # One line on stderr per source that is not ok, naming it.
    lines = [line for line in result.stderr.splitlines() if line.startswith("marketing-etl check:")]
    assert sorted(line.split(":")[1].strip() for line in lines) == ["inboxfirst", "loops", "marin_social", "retreaver"]


def test_human_output_and_subset(sandbox, tmp_path):
    result = check_cli("--sources", "retreaver,loops", env=cli_env(sandbox.env(), tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and lines[0].startswith("ok") and "retreaver" in lines[0] and "loops" in lines[1]


def test_nothing_configured_exits_3_without_a_request(tmp_path):
    # fx needs no key but only serves the others: not checked alone (no internet call).
    result = check_cli("--json", env=cli_env({}, tmp_path), cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    assert {s["status"] for s in json.loads(result.stdout)["sources"]} == {"not configured"}


def test_unknown_source_is_a_configuration_error(tmp_path):
    result = check_cli("--sources", "nosuch", env=cli_env({}, tmp_path), cwd=tmp_path)
    assert result.returncode == 2 and "nosuch" in result.stderr
