"""InboxFirst emulator: email campaigns, their stat summaries and per-link clicks.

See docs/sandbox/inboxfirst.md for what is emulated and where each behaviour comes from.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sandbox.core import Emulator
from sandbox.inboxfirst import models
from sandbox.inboxfirst.models import InboxFirstStore
from sandbox.inboxfirst.routes import InboxFirstRouter, register
from sandbox.world import World


class InboxFirstEmulator(Emulator):
    name = "inboxfirst"

    def __init__(self, world: World) -> None:
        super().__init__(world)
        self.store = InboxFirstStore(world)
        router = InboxFirstRouter(self.store)
        register(router)
        self.prefixes = {"inboxfirst": router}

    def env(self, base_url: str) -> dict[str, str]:
        return {
            "SOURCES__INBOXFIRST__BASE_URL": f"{base_url}/inboxfirst",
            "SOURCES__INBOXFIRST__USERNAME": models.USERNAME,
            "SOURCES__INBOXFIRST__API_KEY": models.API_KEY,
            "SOURCES__INBOXFIRST__MAILING_LIST_IDS": ",".join(str(i) for i in self.store.mailing_lists),
        }

    def advance(self, old_now: datetime, new_now: datetime) -> None:
        # Stats are functions of the clock; only the new days' sends need creating.
        self.store.generate_through(new_now)

    def truth(self) -> dict[str, Any]:
        return self.store.truth(self.world.now)
