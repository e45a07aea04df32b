"""The pipeline tests run real sources too: reuse the throwaway-warehouse fixture."""

from tests.sources.conftest import warehouse  # noqa: F401 - a pytest fixture
