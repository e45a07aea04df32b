"""The FX feed (ECB daily reference rates through Frankfurter) under ``/fx``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sandbox.core import Emulator
from sandbox.fx.models import FxStore
from sandbox.fx.routes import build_router
from sandbox.world import World


class FxEmulator(Emulator):
    name = "fx"

    def __init__(self, world: World) -> None:
        super().__init__(world)
        self.store = FxStore(world)
        self.prefixes = {"fx": build_router(self.store)}

    def env(self, base_url: str) -> dict[str, str]:
        # Keyless feed: the base URL is all a source needs.
        return {"SOURCES__FX__BASE_URL": f"{base_url}/fx"}

    def advance(self, old_now: datetime, new_now: datetime) -> None:
        # Rates are a pure function of the day; publication follows world.now (moved
        # by the server after this call): new business days appear by themselves.
        pass

    def truth(self) -> dict[str, Any]:
        return self.store.truth()


__all__ = ["FxEmulator"]
