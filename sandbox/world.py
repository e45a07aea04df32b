"""The synthetic marketing business every emulator serves a view of.

One company ("Acme Outdoor") buys paid social on Marin Social, B2B display on
ListenLoop, sends email through InboxFirst, keeps its audience in Loops and tracks
phone calls with Retreaver. Calls carry ``utm_campaign`` tags that name the ad
campaigns defined here, so the emulators must agree on this catalogue: it lives in
one place and each emulator reads it.

Everything is derived from ``seed`` through ``World.rng(*key)``: the same seed,
scale and clock give the same world, byte for byte. Keys name *day offsets* from
``start`` (not calendar dates), so the shape of the world does not depend on the
day the sandbox is started.
"""

from __future__ import annotations

import _random
import hashlib
import math
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

_C_SEED = _random.Random.seed
HISTORY_DAYS = 60  # days of activity that exist before "now" when the world is made


@dataclass(frozen=True)
class Account:
    id: str
    name: str
    currency: str
    timezone: str


@dataclass(frozen=True)
class AdCampaign:
    """An ad campaign that calls can be attributed to."""

    platform: str  # "marin_social" | "listenloop"
    id: str
    name: str
    account_id: str
    media_plan_id: str | None  # Marin "client" (media plan); None for ListenLoop
    created_day: int  # day offset from World.start when it was created
    # What a call's utm_campaign says for this campaign: its name, its id, or an
    # agency code that only the editable campaign_map seed resolves.
    utm_value: str
    utm_style: str  # "name" | "id" | "code"


_ADJECTIVES = ["Spring", "Summer", "Autumn", "Winter", "Evergreen", "Flash", "Always-On", "Launch", "Retarget", "Brand"]
_THEMES = ["Tents", "Boots", "Kayaks", "Jackets", "Backpacks", "Stoves", "Sleeping Bags", "Bikes", "Climbing", "Trail Running"]
_AUDIENCES = ["Prospecting", "Lookalike", "Remarketing", "Core", "Broad", "Interest"]
_B2B = ["ABM", "Enterprise", "Mid-Market", "Partners", "Dealers", "Wholesale", "Procurement", "Fleet"]
_FIRST = ["ana", "ben", "carla", "dev", "emma", "farid", "gita", "hugo", "ines", "jon", "kim", "lena", "milo", "nora"]
_LAST = ["smith", "garcia", "khan", "novak", "ito", "berg", "rossi", "moreau", "silva", "okafor"]


@dataclass
class World:
    seed: int = 42
    scale: float = 1.0
    now: datetime = field(default_factory=lambda: datetime.now(UTC).replace(minute=0, second=0, microsecond=0))
    # Answer exactly like the vendor docs' examples where they show a shape (no
    # Link header on v2 call pages, Marin next links without the query's filters,
    # the InboxFirst list without ``success``, optional fields null, catalogue rows
    # with only the documented keys, a lower per_page cap on ListenLoop). The data
    # are the same in both modes; only the answers' shape differs, and ``truth``
    # only where a shape changes what a correct pipeline can end with (InboxFirst
    # sends answered with a null stat_summary).
    doc_shapes: bool = False

    def __post_init__(self) -> None:
        if self.now.tzinfo is None:
            self.now = self.now.replace(tzinfo=UTC)
        self.now = self.now.astimezone(UTC)
        if self.scale <= 0:
            raise ValueError("scale must be > 0")
        # start is midnight UTC HISTORY_DAYS before now: day offset 0.
        self.start = datetime.combine(self.now.date() - timedelta(days=HISTORY_DAYS), datetime.min.time(), UTC)
        self.accounts = self._make_accounts()
        self.marin_campaigns = self._make_marin_campaigns()
        self.listenloop_campaigns = self._make_listenloop_campaigns()
        self.contact_emails = self._make_contact_emails()

    # ------------------------------------------------------------------ randomness
    def rng(self, *key: object) -> random.Random:
        """A random generator that depends only on the seed and ``key``."""
        digest = hashlib.sha256(repr((self.seed,) + key).encode()).digest()
        return random.Random(int.from_bytes(digest[:8], "big"))

    def reseed(self, rng: random.Random, *key: object) -> random.Random:
        """``rng`` put in the very state ``self.rng(*key)`` starts in. Cheaper than a
        new generator (no Python-level seed wrapper) for hot paths that derive many
        small things; each thread must keep its own ``rng``."""
        digest = hashlib.sha256(repr((self.seed,) + key).encode()).digest()
        _C_SEED(rng, int.from_bytes(digest[:8], "big"))  # what Random.seed(int) ends in
        rng.gauss_next = None  # type: ignore[attr-defined]
        return rng

    # ------------------------------------------------------------------------ time
    def day_offset(self, moment: datetime | date) -> int:
        if isinstance(moment, datetime):
            return (moment.astimezone(UTC) - self.start).days
        return (moment - self.start.date()).days

    def day(self, offset: int) -> date:
        return self.start.date() + timedelta(days=offset)

    def at(self, offset_days: float) -> datetime:
        return self.start + timedelta(days=offset_days)

    @property
    def today_offset(self) -> int:
        return self.day_offset(self.now)

    def scaled(self, n: float) -> int:
        """A count that grows linearly with --scale (calls, links...)."""
        return max(1, int(round(n * self.scale)))

    def scaled_sqrt(self, n: float) -> int:
        """A count that grows with the square root of --scale (campaigns, accounts)."""
        return max(1, int(round(n * math.sqrt(self.scale))))

    # ------------------------------------------------------------------- catalogue
    def _make_accounts(self) -> list[Account]:
        # Several currencies and timezones on purpose: spend must be converted and
        # days are reported in the account's own timezone.
        return [
            Account("act_1001", "Acme Outdoor US", "USD", "America/New_York"),
            Account("act_1002", "Acme Outdoor DE", "EUR", "Europe/Berlin"),
            Account("act_1003", "Acme Outdoor UK", "GBP", "Europe/London"),
            Account("act_1004", "Acme Outdoor West", "USD", "America/Los_Angeles"),
        ]

    def _utm(self, rng: random.Random, name: str, cid: str, code: str) -> tuple[str, str]:
        roll = rng.random()
        if roll < 0.55:
            # Humans type names: case is not reliable.
            variant = rng.choice([name, name.lower(), name.upper()])
            return variant, "name"
        if roll < 0.85:
            return cid, "id"
        return code, "code"

    def _make_marin_campaigns(self) -> list[AdCampaign]:
        out = []
        n = self.scaled_sqrt(150)
        for i in range(n):
            rng = self.rng("marin-campaign", i)
            account = self.accounts[i % len(self.accounts)]
            plan = f"{900 + (i % (len(self.accounts) * 3)) + 1}"  # three media plans per account
            name = f"{rng.choice(_ADJECTIVES)} {rng.choice(_THEMES)} - {rng.choice(_AUDIENCES)} #{i + 1}"
            cid = str(23840000000 + i * 7 + 3)
            code = f"ms-{self.seed % 1000:03d}-{i + 1:04d}"
            utm, style = self._utm(rng, name, cid, code)
            created = rng.randint(0, HISTORY_DAYS // 2)
            out.append(AdCampaign("marin_social", cid, name, account.id, plan, created, utm, style))
        return out

    def _make_listenloop_campaigns(self) -> list[AdCampaign]:
        out = []
        n = self.scaled_sqrt(80)
        for i in range(n):
            rng = self.rng("listenloop-campaign", i)
            name = f"{rng.choice(_B2B)} {rng.choice(_THEMES)} Q{rng.randint(1, 4)} #{i + 1}"
            cid = str(5000 + i + 1)
            code = f"ll-{self.seed % 1000:03d}-{i + 1:04d}"
            utm, style = self._utm(rng, name, cid, code)
            created = rng.randint(0, HISTORY_DAYS // 2)
            out.append(AdCampaign("listenloop", cid, name, "org_1", None, created, utm, style))
        return out

    def _make_contact_emails(self) -> list[str]:
        n = self.scaled_sqrt(400)
        out = []
        for i in range(n):
            rng = self.rng("contact", i)
            out.append(f"{rng.choice(_FIRST)}.{rng.choice(_LAST)}{i}@example-buyer.test")
        return out

    # ---------------------------------------------------------------- attribution
    @property
    def ad_campaigns(self) -> list[AdCampaign]:
        return self.marin_campaigns + self.listenloop_campaigns

    def campaign_map(self) -> list[dict[str, str]]:
        """Rows for transforms/seeds/campaign_map.csv: agency codes -> ad campaigns."""
        return [
            {"utm_campaign": c.utm_value, "platform": c.platform, "campaign_id": c.id}
            for c in self.ad_campaigns
            if c.utm_style == "code"
        ]

    # utm_campaign values that name no ad campaign: organic traffic, typos, email.
    UNATTRIBUTED_UTMS = ("organic", "newsletter", "spring-sale-typo", "(not set)")
