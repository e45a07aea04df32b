"""ListenLoop (B2B display ads, v2.listenloop.com) under ``/listenloop``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sandbox.core import Emulator
from sandbox.listenloop.models import API_EMAIL, API_TOKEN, ListenLoopStore
from sandbox.listenloop.routes import build_router
from sandbox.world import World


class ListenLoopEmulator(Emulator):
    name = "listenloop"

    def __init__(self, world: World) -> None:
        super().__init__(world)
        self.store = ListenLoopStore(world)
        self.prefixes = {"listenloop": build_router(self.store)}

    def env(self, base_url: str) -> dict[str, str]:
        return {
            "SOURCES__LISTENLOOP__BASE_URL": f"{base_url}/listenloop",
            "SOURCES__LISTENLOOP__API_KEY": API_TOKEN,
            "SOURCES__LISTENLOOP__EMAIL": API_EMAIL,
        }

    def advance(self, old_now: datetime, new_now: datetime) -> None:
        # Counters, statuses and visibility are pure functions of world.now (which the
        # server moves after this call): there is nothing to generate or store.
        pass

    def truth(self) -> dict[str, Any]:
        return self.store.truth(self.world.now)


__all__ = ["ListenLoopEmulator"]
