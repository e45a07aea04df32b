"""Bad configuration: one clear line and a distinct exit code, before any damage.

Exit codes (docs/operations.md): 2 for a configuration error found before the run
starts (nothing is locked, requested or written) or for keys every source refused;
3 when every host is unreachable (nothing ran). See docs/reliability.md.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCALE = 0.05
VENDORS = "listenloop,marin_social,inboxfirst,retreaver,loops"  # fx has no key


def run_cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], capture_output=True, text=True, timeout=300, env=env, cwd=cwd)


def clean_env(extra: dict[str, str], tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "DESTINATION__"))}
    return {
        **env,
        "DLT_DATA_DIR": str(tmp_path / "dlt"),
        "RUNTIME__REQUEST_BACKOFF_FACTOR": "0.05",
        "RUNTIME__REQUEST_MAX_RETRY_DELAY": "1",
        **extra,
    }


@pytest.fixture
def small(sandbox):
    """The sandbox, reset at SCALE (sandbox_scale below)."""
    return sandbox


@pytest.fixture
def sandbox_scale() -> float:
    """Every test here that uses the sandbox wants the small world: reset it once, at SCALE."""
    return SCALE


BAD_TOML = '[sources.retreaver]\napi_key = "unterminated\n'

# (case, env changes (None: unset), files under ./.dlt, warehouse path relative to tmp, words the line must hold)
PREFLIGHT = [
    ("malformed secrets.toml", {}, {"secrets.toml": BAD_TOML}, "w.duckdb", ["secrets.toml", "line 2"]),
    ("malformed config.toml", {}, {"config.toml": "[runtime\nlog_level = 1\n"}, "w.duckdb", ["config.toml"]),
    ("base URL without scheme", {"SOURCES__RETREAVER__BASE_URL": "api.retreaver.com"}, {}, "w.duckdb", ["SOURCES__RETREAVER__BASE_URL", "http(s)://"]),
    ("base URL with a bad port", {"SOURCES__MARIN_SOCIAL__BASE_URL": "http://127.0.0.1:99999/x"}, {}, "w.duckdb", ["SOURCES__MARIN_SOCIAL__BASE_URL"]),
    ("calls base URL with a space", {"SOURCES__RETREAVER__CALLS_BASE_URL": "https://canary retreaver.com"}, {}, "w.duckdb", ["SOURCES__RETREAVER__CALLS_BASE_URL"]),
    ("impossible start date", {"SOURCES__MARIN_SOCIAL__START_DATE": "2026-02-30"}, {}, "w.duckdb", ["SOURCES__MARIN_SOCIAL__START_DATE", "not a date"]),
    ("start date in the future", {"SOURCES__RETREAVER__START_DATE": "2100-01-01"}, {}, "w.duckdb", ["SOURCES__RETREAVER__START_DATE", "future"]),
    ("start date in 1970", {"SOURCES__INBOXFIRST__START_DATE": "1970-01-01"}, {}, "w.duckdb", ["SOURCES__INBOXFIRST__START_DATE"]),
    ("half the credentials", {"SOURCES__LISTENLOOP__EMAIL": None}, {}, "w.duckdb", ["SOURCES__LISTENLOOP__EMAIL", "missing"]),
    ("inboxfirst without lists", {"SOURCES__INBOXFIRST__MAILING_LIST_IDS": None}, {}, "w.duckdb", ["SOURCES__INBOXFIRST__MAILING_LIST_IDS"]),
    ("warehouse in a missing directory", {}, {}, "no/such/dir/w.duckdb", ["does not exist"]),
    ("warehouse is a directory", {}, {}, "adir", ["is a directory"]),
]


@pytest.mark.parametrize("case,changes,files,warehouse,words", PREFLIGHT, ids=[c[0] for c in PREFLIGHT])
def test_configuration_errors_exit_2_with_one_line_before_anything_is_touched(small, tmp_path, case, changes, files, warehouse, words):
    env = clean_env(small.env(), tmp_path)
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    for name, text in files.items():
        (tmp_path / ".dlt").mkdir(exist_ok=True)
        (tmp_path / ".dlt" / name).write_text(text)
    (tmp_path / "adir").mkdir()
    seq = small.requests()[-1]["seq"] if small.requests() else 0
    result = run_cli("run", "--warehouse", str(tmp_path / warehouse), env=env, cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("marketing-etl run: configuration error:"), result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    # Before any partial damage: no request, no warehouse, no lock, no dlt state.
    assert small.requests(since=seq) == []
    assert not list(tmp_path.rglob("*.duckdb*")) and not (tmp_path / "dlt").exists()


def test_keys_every_source_refuses_exit_2_naming_each_setting(small, tmp_path):
    env = clean_env(small.env(), tmp_path)
    for key in [k for k in env if k.startswith("SOURCES__") and k.endswith("__API_KEY")]:
        env[key] = "sentinel-wrong-" + key.lower()
    result = run_cli("run", "--sources", VENDORS, "--warehouse", str(tmp_path / "w.duckdb"), env=env, cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    # Loops looks up emails the other sources loaded: with none, it sends no request.
    for name in ("listenloop", "marin_social", "inboxfirst", "retreaver"):
        line = next(line for line in result.stderr.splitlines() if line.startswith(f"marketing-etl: {name} failed"))
        assert f"SOURCES__{name.upper()}__" in line and ("401" in line or "403" in line), line
    assert "sentinel-wrong" not in result.stdout + result.stderr


def test_unreachable_hosts_exit_3_naming_each_source_quickly(tmp_path):
    closed = "http://127.0.0.1:9"
    env = clean_env(
        {
            "SOURCES__LISTENLOOP__BASE_URL": closed, "SOURCES__LISTENLOOP__API_KEY": "sentinel-ll-1234", "SOURCES__LISTENLOOP__EMAIL": "a@b.c",
            "SOURCES__MARIN_SOCIAL__BASE_URL": closed, "SOURCES__MARIN_SOCIAL__API_KEY": "sentinel-ms-1234",
            "SOURCES__RETREAVER__BASE_URL": closed, "SOURCES__RETREAVER__CALLS_BASE_URL": closed, "SOURCES__RETREAVER__API_KEY": "sentinel-rt-1234",
        },
        tmp_path,
    )
    result = run_cli("run", "--sources", "listenloop,marin_social,retreaver", "--warehouse", str(tmp_path / "w.duckdb"), env=env, cwd=tmp_path)
    assert result.returncode == 3, result.stdout + result.stderr
    for name in ("listenloop", "marin_social", "retreaver"):
        line = next(line for line in result.stderr.splitlines() if line.startswith(f"marketing-etl: {name} failed"))
        assert "Connection refused" in line and "GET /" in line, line
    assert "sentinel-" not in result.stdout + result.stderr
