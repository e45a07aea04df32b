"""Marin Social (paid social, ``api.mysocialpixel.com``) emulator.

See ``docs/sandbox/marin_social.md`` for what is emulated and where each behaviour
comes from.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sandbox.core import Emulator
from sandbox.marin_social.models import MarinStore
from sandbox.marin_social.routes import build_router
from sandbox.world import World

API_KEY = "sandbox-marin-social-key-0001"


class MarinSocialEmulator(Emulator):
    name = "marin_social"

    def __init__(self, world: World) -> None:
        super().__init__(world)
        self.store = MarinStore(world)
        self.prefixes = {"marin_social": build_router(self.store, API_KEY)}

    def env(self, base_url: str) -> dict[str, str]:
        return {
            "SOURCES__MARIN_SOCIAL__BASE_URL": f"{base_url}/marin_social",
            "SOURCES__MARIN_SOCIAL__API_KEY": API_KEY,
        }

    def advance(self, old_now: datetime, new_now: datetime) -> None:
        """Nothing to store: statistics are a function of ``world.now`` (new days
        appear, the last 3 days are restated) and the dimensions never change, since
        every catalogue campaign already exists (created_day <= 30 < today)."""

    def truth(self) -> dict[str, Any]:
        return self.store.truth()


__all__ = ["MarinSocialEmulator", "API_KEY"]
