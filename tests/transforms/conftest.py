"""End-to-end transform tests load real sources: reuse the warehouse fixture."""

from tests.sources.conftest import warehouse  # noqa: F401 - a pytest fixture
