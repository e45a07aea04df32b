"""Loops (email audience, app.loops.so) under ``/loops``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sandbox.core import Emulator
from sandbox.loops.models import API_KEY, LoopsStore
from sandbox.loops.routes import build_router
from sandbox.world import World


class LoopsEmulator(Emulator):
    name = "loops"

    def __init__(self, world: World) -> None:
        super().__init__(world)
        self.store = LoopsStore(world)
        self.prefixes = {"loops": build_router(self.store)}

    def env(self, base_url: str) -> dict[str, str]:
        return {"SOURCES__LOOPS__BASE_URL": f"{base_url}/loops", "SOURCES__LOOPS__API_KEY": API_KEY}

    def advance(self, old_now: datetime, new_now: datetime) -> None:
        # A world contact is findable once its createdAt <= world.now (moved by the
        # server after this call): contacts created in the window appear by themselves.
        pass

    def truth(self) -> dict[str, Any]:
        return self.store.truth(self.world.now)


__all__ = ["LoopsEmulator"]
