"""Shared by the reliability suite (docs/reliability.md).

``--long`` (registered in tests/conftest.py, so that ``pytest --long`` works from
the repository root) turns on the long mode: many more kill points, seeds and bad
inputs.
"""

from __future__ import annotations

import pytest

from tests.sources.conftest import warehouse  # noqa: F401 - a pytest fixture


@pytest.fixture(scope="session")
def long_mode(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--long"))
