"""Shared fixtures: one sandbox server per test session, reset before each test."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

import pipelines  # noqa: F401 - sets RUNTIME__DLTHUB_TELEMETRY=false before dlt starts

from sandbox.control import SandboxControl
from sandbox.server import SandboxThread

# The sandbox clock sits 10 days behind the wall clock in tests, so a test can
# advance it several days without its data landing in the future.
TEST_NOW = (datetime.now(timezone.utc) - timedelta(days=10)).replace(minute=0, second=0, microsecond=0)
TEST_SEED = 7


@pytest.fixture(scope="session")
def sandbox_server():
    with SandboxThread(seed=TEST_SEED, scale=1.0, now=TEST_NOW) as server:
        yield server


def pytest_addoption(parser: pytest.Parser) -> None:
    # Only the root conftest's options are known when pytest starts from the repository root.
    parser.addoption("--long", action="store_true", default=False, help="reliability suite: many more kill points, seeds and bad inputs")


SANDBOX_MODES = ("default", "doc_shapes")
# Run a test against both sandbox modes: our reading of the docs, and answers shaped
# exactly like the vendor docs' examples (see docs/sandbox.md, "Doc shapes").
both_sandbox_modes = pytest.mark.parametrize("sandbox_mode", SANDBOX_MODES)


@pytest.fixture
def sandbox_mode() -> str:
    """``default``; a test parametrized on ``sandbox_mode`` overrides it."""
    return "default"


@pytest.fixture
def sandbox(sandbox_server, sandbox_mode) -> SandboxControl:
    """A freshly reset sandbox (same seed, scale and clock), no faults, empty log."""
    if sandbox_mode not in SANDBOX_MODES:
        raise ValueError(f"sandbox_mode must be one of {SANDBOX_MODES}")
    control = SandboxControl(sandbox_server.base_url)
    control.reset(seed=TEST_SEED, scale=1.0, now=TEST_NOW.isoformat(), doc_shapes=sandbox_mode == "doc_shapes")
    return control
