"""A requests client for the sandbox's control endpoints (tests, demo, benchmarks)."""

from __future__ import annotations

from typing import Any

import requests


class SandboxControl:
    def __init__(self, base_url: str, session: requests.Session | None = None):
        self.base_url = base_url.rstrip("/")
        self.http = session or requests.Session()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, f"{self.base_url}/_sandbox/{path}", timeout=120, **kwargs)
        response.raise_for_status()
        return response.json()

    def url(self, prefix: str) -> str:
        return f"{self.base_url}/{prefix}"

    def env(self) -> dict[str, str]:
        return self._call("GET", "env")

    def clock(self) -> dict[str, str]:
        return self._call("GET", "clock")

    def reset(self, **world: Any) -> dict[str, Any]:
        return self._call("POST", "reset", json=world)

    def advance(self, days: float) -> dict[str, Any]:
        return self._call("POST", "advance", json={"days": days})

    def add_fault(self, kind: str, **rule: Any) -> list[dict[str, Any]]:
        return self._call("POST", "faults", json={"kind": kind, **rule})

    def faults(self) -> list[dict[str, Any]]:
        return self._call("GET", "faults")

    def clear_faults(self) -> None:
        self._call("DELETE", "faults")

    def corrupt(self, field: str | None = None, **rule: Any) -> list[dict[str, Any]]:
        """Serve bad records (sandbox.core.CorruptRule): ``corrupt("spent", value=-5, api=...)``."""
        return self._call("POST", "corrupt", json={**({"field": field} if field else {}), **rule})

    def clear_corruptions(self) -> None:
        self._call("DELETE", "corrupt")

    def requests(self, api: str | None = None, since: int = 0) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"since": since}
        if api:
            params["api"] = api
        return self._call("GET", "requests", params=params)

    def clear_requests(self) -> None:
        self._call("DELETE", "requests")

    def truth(self, api: str | None = None) -> dict[str, Any]:
        return self._call("GET", "truth", params={"api": api} if api else None)
