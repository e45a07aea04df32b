"""Retreaver (call tracking): api.retreaver.com under ``/retreaver`` and the v2 call
log of canary.retreaver.com under ``/retreaver_calls``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sandbox.core import Emulator
from sandbox.retreaver.models import API_KEY, COMPANY_ID, RetreaverStore
from sandbox.retreaver.routes import build_routers
from sandbox.world import World


class RetreaverEmulator(Emulator):
    name = "retreaver"

    def __init__(self, world: World) -> None:
        super().__init__(world)
        self.store = RetreaverStore(world)
        api, canary = build_routers(self.store)
        self.prefixes = {"retreaver": api, "retreaver_calls": canary}

    def env(self, base_url: str) -> dict[str, str]:
        return {
            "SOURCES__RETREAVER__BASE_URL": f"{base_url}/retreaver",
            "SOURCES__RETREAVER__CALLS_BASE_URL": f"{base_url}/retreaver_calls",
            "SOURCES__RETREAVER__API_KEY": API_KEY,
            "SOURCES__RETREAVER__COMPANY_ID": str(COMPANY_ID),
        }

    def advance(self, old_now: datetime, new_now: datetime) -> None:
        # world.now is still old_now here: the store is told the new clock explicitly.
        self.store.advance(old_now, new_now)

    def truth(self) -> dict[str, Any]:
        return self.store.truth()

    def close(self) -> None:
        self.store.close()


__all__ = ["RetreaverEmulator"]
