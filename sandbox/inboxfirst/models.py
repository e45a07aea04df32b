"""InboxFirst store: mailing lists, campaigns, per-content and per-link stats.

No HTTP here. Everything is a pure function of (seed, scale, now):

* Campaign *records* (who, when, how many recipients, how many links) are generated
  per day offset and per mailing list from ``world.rng`` and kept in memory (about
  50 at scale 1). A campaign exists once its send has started (``started_at <= now``);
  one idle draft per list exists from day 0.
* Stats are *leaves* (one final value per content and counter, one per link for
  clicks) matured by ``maturity(age)``, rounded, then summed upwards:
  link -> content -> campaign. Rounding each leaf keeps every sum monotone in time
  and makes the totals exact: campaign ``clicks_total`` == sum of its links'
  ``clicks_total`` (same for ``clicks_unique`` and ``clicks_unique_by_link``).
* Links are regenerated on demand from ``rng("inboxfirst-links", campaign, content)``;
  only a small LRU of link lists and the final per-content sums of campaigns that
  stopped maturing are cached, so scale 100 stays light.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from itertools import islice
from typing import Any

from sandbox.world import World

ORGANIZATION_ID = 1
ORGANIZATION_NAME = "Acme Outdoor"
USERNAME = str(ORGANIZATION_ID)
# 40 hex characters like the doc's keys, fixed so every run shares them; derived from
# a sandbox label, it is plainly no production key.
API_KEY = hashlib.sha1(b"sandbox-inboxfirst-api-key").hexdigest()

# Doc-shaped mode: every sent campaign whose id is a multiple of this answers
# ``stat_summary: null`` (and null content summaries), as the doc's field table allows
# and its scheduled-campaign example shows; truth() counts no figures for them.
DOC_NULL_STATS_EVERY = 10

FINAL_AFTER = timedelta(days=7)  # stats stop changing this long after the send starts
# Time constants (hours) of the maturity curve per counter family: bounces arrive
# within hours, opens within a day, clicks and unsubscribes trail behind.
TAU_HOURS = {"send": 0.0, "bounce": 2.0, "open": 12.0, "click": 18.0, "unsub": 30.0, "scomp": 30.0}

# (id, name, base list size, day offsets mod 7 it sends on). Two sends a week each.
MAILING_LISTS = [
    (1, "Acme Outdoor Newsletter", 12000, (1, 4)),
    (2, "Acme Trail Club", 4500, (2, 5)),
    (3, "Acme Pro Dealers", 2500, (0, 3)),
]

_SERIES = {
    1: ["Weekly Gear Digest", "New Arrivals", "Weekend Deals", "Member Picks"],
    2: ["Trail Club Bulletin", "Route of the Week", "Club Challenge", "Trail Tips"],
    3: ["Dealer Update", "Wholesale Pricing", "Dealer Promo Kit", "Stock Alert"],
}
_TOPICS = ["Tents", "Boots", "Kayaks", "Jackets", "Backpacks", "Stoves", "Sleeping Bags", "Bikes", "Climbing", "Trail Running"]
# Mixed case on purpose: link_stats sorts by case-insensitive URL.
_SECTIONS = ["shop", "Sale", "new", "Outlet", "collections", "Gear"]
_FIXED_LINKS = [
    "https://www.facebook.com/acmeoutdoor?ref=email-{k}",
    "https://www.instagram.com/acmeoutdoor/?p={k}",
    "https://www.acme-outdoor.test/stores?near=me&l={k}",
    "https://blog.acme-outdoor.test/stories/{topic}-{k}",
]


def maturity(age_hours: float, family: str) -> float:
    """Share of a counter's final value reached ``age_hours`` after the send started."""
    if age_hours < 0:
        return 0.0
    tau = TAU_HOURS[family]
    if tau == 0.0 or age_hours >= FINAL_AFTER.total_seconds() / 3600:
        return 1.0
    return 1.0 - math.exp(-age_hours / tau)


@lru_cache(maxsize=4096)  # a few hundred names and topics, asked once per link
def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def iso(moment: datetime | None) -> str | None:
    """Timestamps as the doc shows them: UTC, seconds, ``Z``."""
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Content:
    id: int
    name: str
    subject: str
    format: str  # "html" | "both"
    share: float  # share of the campaign's recipients
    n_links: int


@dataclass(frozen=True)
class Campaign:
    id: int
    mailing_list_id: int
    name: str
    created_at: datetime
    begins_at: datetime | None  # None: an idle draft
    started_at: datetime | None
    finished_at: datetime | None  # planned end of the send
    recipients: int
    contents: tuple[Content, ...]
    autowinner_delay_hours: int  # only meaningful with two contents
    from_name: str

    @property
    def stat_id(self) -> int:
        return 100000 + self.id

    @property
    def is_draft(self) -> bool:
        return self.started_at is None

    @property
    def is_split_test(self) -> bool:
        return len(self.contents) > 1

    @property
    def slug(self) -> str:
        return slug(self.name)


@dataclass(frozen=True)
class Link:
    link_id: int
    content_id: int
    url: str
    clicks_total: int  # final values; see ``link_row`` for the values at a moment
    clicks_unique_by_link: int
    clicks_unique: int


# Counter leaves of one content, final values. Bounces are split 3 (type) x 2
# (local/remote) so that hard+soft+other == local+remote == unique at every moment.
# stat_summary fields whose sums over all campaigns truth() reports (as sum_<key>).
TRUTH_STAT_KEYS = (
    "messages_sent", "accepted", "bounces_total", "bounces_unique", "clicks_total", "clicks_unique",
    "clicks_unique_by_link", "opens_total", "opens_unique", "unsubs_total", "unsubs_unique",
    "scomps_total", "scomps_unique",
)

_BOUNCE_LEAVES = [(t, loc) for t in ("hard", "soft", "other") for loc in ("local", "remote")]


class InboxFirstStore:
    """All InboxFirst state for one world."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.mailing_lists = {lid: name for lid, name, _, _ in MAILING_LISTS}
        self._campaigns: list[Campaign] = []
        self._by_id: dict[int, Campaign] = {}
        self._generated_through = -1  # last day offset generated
        self._next_id = 1
        self._sends = 0  # sends generated so far (drives the link-count pattern)
        self._links_lru: OrderedDict[int, list[Link]] = OrderedDict()
        self._final_sums: dict[int, dict[int, dict[str, int]]] = {}  # campaign -> content -> counters
        self.html_cache: dict[tuple[int, int], str] = {}  # (campaign, content) -> HTML preview
        self._make_drafts()
        self.generate_through(world.now)

    # ------------------------------------------------------------------ generation
    def _make_drafts(self) -> None:
        """One idle template per list: listed without filters, excluded by them."""
        for lid, list_name, _, _ in MAILING_LISTS:
            cid = self._next_id
            self._next_id += 1
            created = self.world.at(0) + timedelta(hours=9, minutes=lid * 7)
            content = Content(cid * 10 + 1, "Template", f"{list_name} template", "html", 1.0, 0)
            self._add(Campaign(cid, lid, f"{list_name} - Template", created, None, None, None, 0, (content,), 0, list_name))

    def _add(self, campaign: Campaign) -> None:
        self._campaigns.append(campaign)
        self._by_id[campaign.id] = campaign

    def generate_through(self, moment: datetime) -> None:
        """Create the campaigns of every day up to ``moment``'s day (idempotent).

        Ids are handed out in send order, day by day, so they do not depend on when
        a day was generated; visibility is decided later against ``now``.
        """
        last = self.world.day_offset(moment)
        for day in range(self._generated_through + 1, last + 1):
            sends = []
            for lid, list_name, size, weekdays in MAILING_LISTS:
                rng = self.world.rng("inboxfirst-sends", lid, day)
                # Two fixed weekdays per list, plus extra sends growing with sqrt(scale).
                count = 1 if day % 7 in weekdays else 0
                extra = (2 / 7) * (math.sqrt(self.world.scale) - 1)
                count += int(extra) + (1 if rng.random() < extra - int(extra) else 0)
                for i in range(count):
                    start = self.world.at(day) + timedelta(hours=rng.randint(13, 17), minutes=rng.randint(0, 59), seconds=rng.randint(0, 59))
                    sends.append((start, lid, list_name, size, i))
            for start, lid, list_name, size, i in sorted(sends):
                self._add(self._make_campaign(day, start, lid, list_name, size, i))
        self._generated_through = max(self._generated_through, last)

    def _make_campaign(self, day: int, start: datetime, lid: int, list_name: str, size: int, i: int) -> Campaign:
        cid = self._next_id
        self._next_id += 1
        seq = self._sends
        self._sends += 1
        rng = self.world.rng("inboxfirst-campaign", lid, day, i)
        week = day // 7 + 1
        name = f"{rng.choice(_SERIES[lid])} W{week} - {rng.choice(_TOPICS)} #{cid}"
        recipients = int(self.world.scaled(size) * rng.uniform(0.92, 1.05))
        # Link counts: most emails carry a few dozen links, a quarter hundreds
        # (several link_stats pages at per_page=100), every 16th more than 500.
        if seq % 16 == 7:
            n_links = rng.randint(520, 900)
        elif rng.random() < 0.25:
            n_links = rng.randint(120, 480)
        else:
            n_links = rng.randint(12, 45)
        split = rng.random() < 0.25
        if split:
            # Automatic winner selection, 20% test: each variant gets 10%, the winner
            # (decided here, see _content_finals) the remaining 80% as well.
            winner = rng.randint(0, 1)
            shares = [0.9 if k == winner else 0.1 for k in range(2)]
        else:
            shares = [1.0]
        contents = []
        for k, share in enumerate(shares):
            label = "AB"[k] if split else ""
            contents.append(
                Content(
                    id=cid * 10 + k + 1,
                    name=f"Content {label}".strip() if split else "Main content",
                    subject=f"{name.split(' W')[0]}: {rng.choice(_TOPICS)} {rng.choice(['for you', 'this week', 'in stock', 'on sale'])}",
                    format=rng.choice(["html", "both"]),
                    share=share,
                    n_links=n_links // len(shares) + (n_links % len(shares) if k == 0 else 0),
                )
            )
        duration = timedelta(minutes=rng.randint(20, 90))
        created = start - timedelta(days=rng.randint(1, 4), hours=rng.randint(0, 8))
        return Campaign(
            cid, lid, name, created, start, start, start + duration, recipients, tuple(contents),
            rng.randint(2, 4), list_name,
        )

    # --------------------------------------------------------------------- lookups
    def visible(self, campaign: Campaign, now: datetime) -> bool:
        return campaign.is_draft or campaign.started_at <= now  # type: ignore[operator]

    def campaigns(self, now: datetime, mailing_list_id: int | None = None) -> list[Campaign]:
        return [
            c for c in self._campaigns
            if self.visible(c, now) and (mailing_list_id is None or c.mailing_list_id == mailing_list_id)
        ]

    def campaign(self, campaign_id: int, now: datetime) -> Campaign | None:
        c = self._by_id.get(campaign_id)
        return c if c is not None and self.visible(c, now) else None

    def campaign_by_stat(self, stat_id: int, now: datetime) -> Campaign | None:
        return self.campaign(stat_id - 100000, now)

    def stats_null(self, campaign: Campaign) -> bool:
        """Doc-shaped mode: a sent campaign answering ``stat_summary: null``."""
        return self.world.doc_shapes and not campaign.is_draft and campaign.id % DOC_NULL_STATS_EVERY == 0

    # ------------------------------------------------------------------------ links
    def links(self, campaign: Campaign) -> list[Link]:
        """Every link of a campaign with final click counts, in link_id order."""
        cached = self._links_lru.get(campaign.id)
        if cached is not None:
            self._links_lru.move_to_end(campaign.id)
            return cached
        out: list[Link] = []
        if not campaign.is_draft:
            finals = {c.id: self._content_finals(campaign, c) for c in campaign.contents}
            for content in campaign.contents:
                out.extend(self._make_links(campaign, content, finals[content.id]["target_clicks"]))
        self._links_lru[campaign.id] = out
        if len(self._links_lru) > 64:
            self._links_lru.popitem(last=False)
        return out

    def raw_links(self, campaign: Campaign, content: Content) -> Iterator[tuple[str, float, float, float]]:
        """(url, popularity weight, by_link/total ratio, unique/by_link ratio) per link,
        in link order; a generator so the HTML preview can take the first few cheaply."""
        rng = self.world.rng("inboxfirst-links", campaign.id, content.id)
        tag = slug(content.name)
        for k in range(content.n_links):
            roll = rng.random()
            topic = slug(rng.choice(_TOPICS))
            if roll < 0.75:
                # The email channel's own UTM: utm_campaign is this campaign's name slug.
                url = (
                    f"https://www.acme-outdoor.test/{rng.choice(_SECTIONS)}/{topic}/item-{k + 1}"
                    f"?utm_source=inboxfirst&utm_medium=email&utm_campaign={campaign.slug}&utm_content={tag}-{k + 1}"
                )
            else:
                url = rng.choice(_FIXED_LINKS).format(k=k + 1, topic=topic)
            # Heavy-tailed popularity: a few links take most clicks, many get none.
            yield url, rng.paretovariate(1.1), rng.uniform(0.6, 0.9), rng.uniform(0.65, 0.95)

    def _make_links(self, campaign: Campaign, content: Content, target_clicks: int) -> list[Link]:
        raw = list(self.raw_links(campaign, content))
        weight = sum(w for _, w, _, _ in raw) or 1.0
        links = []
        for k, (url, w, r_by_link, r_unique) in enumerate(raw):
            total = int(target_clicks * w / weight)
            by_link = int(round(total * r_by_link))
            links.append(Link(content.id * 1000 + k + 1, content.id, url, total, by_link, int(round(by_link * r_unique))))
        return links

    @staticmethod
    def link_row(link: Link, age_hours: float) -> dict[str, Any]:
        return InboxFirstStore._link_row(link, maturity(age_hours, "click"))

    @staticmethod
    def _link_row(link: Link, m: float) -> dict[str, Any]:
        return {
            "clicks_total": round(link.clicks_total * m),
            "clicks_unique": round(link.clicks_unique * m),
            "clicks_unique_by_link": round(link.clicks_unique_by_link * m),
            "link_id": link.link_id,
            "url": link.url,
        }

    def age_hours(self, campaign: Campaign, at: datetime) -> float:
        assert campaign.started_at is not None
        return (at - campaign.started_at).total_seconds() / 3600

    # ------------------------------------------------------------------------ stats
    def _content_finals(self, campaign: Campaign, content: Content) -> dict[str, int]:
        """Final (fully matured) counters of one content, clicks excepted."""
        rng = self.world.rng("inboxfirst-content", campaign.id, content.id)
        sent = int(round(campaign.recipients * content.share))
        failure = int(round(sent * rng.uniform(0.001, 0.004)))
        toolong = int(round(sent * rng.uniform(0.0, 0.001)))
        accepted = sent - failure - toolong
        # Open rates: the split-test winner (largest share) opens best, as it must have.
        open_rate = rng.uniform(0.15, 0.38) + (0.05 if content.share == 0.9 else 0.0)
        opens_unique = int(round(accepted * open_rate))
        out = {
            "sent": sent,
            "total_failure": failure,
            "total_failure_toolong": toolong,
            "accepted": accepted,
            "opens_unique": opens_unique,
            "opens_total": int(round(opens_unique * rng.uniform(1.3, 2.1))),
            "unsubs_unique": int(round(accepted * rng.uniform(0.001, 0.006))),
            "scomps_unique": int(round(accepted * rng.uniform(0.0001, 0.0008))),
            "target_clicks": int(round(opens_unique * rng.uniform(0.08, 0.22) * rng.uniform(1.2, 1.8))),
        }
        out["unsubs_total"] = out["unsubs_unique"] + int(round(out["unsubs_unique"] * rng.uniform(0.0, 0.1)))
        out["scomps_total"] = out["scomps_unique"]
        bounces = int(round(sent * rng.uniform(0.005, 0.02)))
        type_shares = {"hard": 0.6, "soft": 0.3, "other": 0.1}
        local_share = rng.uniform(0.05, 0.15)
        for t, loc in _BOUNCE_LEAVES:
            share = type_shares[t] * (local_share if loc == "local" else 1 - local_share)
            out[f"bounce_{t}_{loc}"] = int(round(bounces * share))
        unique = sum(out[f"bounce_{t}_{loc}"] for t, loc in _BOUNCE_LEAVES)
        out["bounces_duplicate"] = int(round(unique * rng.uniform(0.05, 0.3)))
        return out

    def content_counters(self, campaign: Campaign, content: Content, at: datetime) -> dict[str, int]:
        """The raw counters of one content at moment ``at`` (matured leaves, summed)."""
        age = self.age_hours(campaign, at)
        final = age >= FINAL_AFTER.total_seconds() / 3600
        cached = self._final_sums.get(campaign.id, {}).get(content.id) if final else None
        if cached is not None:
            return cached
        f = self._content_finals(campaign, content)

        def grow(name: str, family: str) -> int:
            return round(f[name] * maturity(age, family))

        out = {
            "sent": f["sent"] if age >= 0 else 0,
            "accepted": f["accepted"] if age >= 0 else 0,
            "total_failure": f["total_failure"] if age >= 0 else 0,
            "total_failure_toolong": f["total_failure_toolong"] if age >= 0 else 0,
            "opens_unique": grow("opens_unique", "open"),
            "opens_total": grow("opens_total", "open"),
            "unsubs_unique": grow("unsubs_unique", "unsub"),
            "unsubs_total": grow("unsubs_total", "unsub"),
            "scomps_unique": grow("scomps_unique", "scomp"),
            "scomps_total": grow("scomps_total", "scomp"),
            "bounces_duplicate": grow("bounces_duplicate", "bounce"),
        }
        for t, loc in _BOUNCE_LEAVES:
            out[f"bounce_{t}_{loc}"] = grow(f"bounce_{t}_{loc}", "bounce")
        # The content's links' rows summed (link_row's rounding, maturity computed once).
        m = maturity(age, "click")
        total = unique = by_link = 0
        for link in self.links(campaign):
            if link.content_id == content.id:
                total += round(link.clicks_total * m)
                unique += round(link.clicks_unique * m)
                by_link += round(link.clicks_unique_by_link * m)
        out.update({"clicks_total": total, "clicks_unique": unique, "clicks_unique_by_link": by_link})
        if final:
            self._final_sums.setdefault(campaign.id, {})[content.id] = out
        return out

    def link_rows(self, campaign: Campaign, now: datetime, url: str | None = None, content_id: int | None = None) -> list[dict[str, Any]]:
        """link_stats rows at ``now``, filtered, sorted by case-insensitive url then link_id.

        ``url`` may contain ``*`` wildcards (doc); matching is case-sensitive and
        must cover the whole URL (sandbox choice: the doc does not say).
        """
        if campaign.is_draft:
            return []  # "if a campaign hasn't yet delivered, this API will return an empty list"
        pattern = re.compile("^" + ".*".join(re.escape(part) for part in url.split("*")) + "$") if url else None
        m = maturity(self.age_hours(campaign, now), "click")
        rows = [
            self._link_row(link, m)
            for link in self.links(campaign)
            if (content_id is None or link.content_id == content_id) and (pattern is None or pattern.match(link.url))
        ]
        rows.sort(key=lambda r: (r["url"].lower(), r["link_id"]))
        return rows

    def truth(self, now: datetime) -> dict[str, Any]:
        """Totals of everything visible at ``now``; see docs/sandbox/inboxfirst.md."""
        visible = self.campaigns(now)
        sums = {key: 0 for key in TRUTH_STAT_KEYS}
        links = {"count": 0, "sum_clicks_total": 0, "sum_clicks_unique": 0, "sum_clicks_unique_by_link": 0}
        null_stats = 0
        for campaign in visible:
            if campaign.is_draft:
                continue
            counters = self.campaign_counters(campaign, now)
            summary = stat_summary({**counters, "sent_html": 0, "sent_multipart": 0}, None)
            if self.stats_null(campaign):
                null_stats += 1  # its stat columns load as NULL: nothing to sum
            else:
                for key in TRUTH_STAT_KEYS:
                    sums[key] += summary[key]
            links["count"] += sum(c.n_links for c in campaign.contents)
            # Link clicks sum to the campaign's by construction (same rounded leaves).
            links["sum_clicks_total"] += counters["clicks_total"]
            links["sum_clicks_unique"] += counters["clicks_unique"]
            links["sum_clicks_unique_by_link"] += counters["clicks_unique_by_link"]
        by_list = {str(lid): 0 for lid in self.mailing_lists}
        for campaign in visible:
            by_list[str(campaign.mailing_list_id)] += 1
        return {
            "campaigns": {
                "count": len(visible),
                "count_sent": sum(1 for c in visible if not c.is_draft),
                "count_by_mailing_list": by_list,
                "count_stat_summary_null": null_stats,
                **{f"sum_{key}": value for key, value in sums.items()},
            },
            "link_stats": links,
            "mailing_lists": {"count": len(self.mailing_lists)},
        }

    def campaign_counters(self, campaign: Campaign, at: datetime) -> dict[str, int]:
        total: dict[str, int] = {}
        for content in campaign.contents:
            for key, value in self.content_counters(campaign, content, at).items():
                total[key] = total.get(key, 0) + value
        return total


def _ratio(a: int, b: int) -> float:
    return a / b if b else 0.0


def stat_summary(counters: dict[str, int], fmt: str | None) -> dict[str, Any]:
    """A ``stat_summary`` hash in the doc's key order, from raw counters.

    ``fmt`` is the content format ("html" -> sent_html, "both" -> sent_multipart);
    None for a campaign-level summary whose counters were summed over contents
    (then ``sent_html``/``sent_multipart`` are given in ``counters``).
    """
    c = counters
    sent = c["sent"]
    if fmt is not None:
        sent_html = sent if fmt == "html" else 0
        sent_multipart = sent if fmt == "both" else 0
    else:
        sent_html, sent_multipart = c["sent_html"], c["sent_multipart"]
    hard = c["bounce_hard_local"] + c["bounce_hard_remote"]
    soft = c["bounce_soft_local"] + c["bounce_soft_remote"]
    other = c["bounce_other_local"] + c["bounce_other_remote"]
    local = c["bounce_hard_local"] + c["bounce_soft_local"] + c["bounce_other_local"]
    unique = hard + soft + other
    remote = unique - local
    bounces_total = unique + c["bounces_duplicate"]
    accepted = c["accepted"]
    by_code = {code: n for code, n in (("10", hard), ("20", soft), ("50", other)) if n}
    return {
        "sent_text": 0,
        "sent_html": sent_html,
        "sent_multipart": sent_multipart,
        "bounces_total": bounces_total,
        "bounces_unique": unique,
        "bounces_unique_hard": hard,
        "bounces_unique_soft": soft,
        "bounces_unique_other": other,
        "bounces_unique_local": local,
        "bounces_unique_remote": remote,
        "clicks_total": c["clicks_total"],
        "clicks_unique": c["clicks_unique"],
        "clicks_unique_by_link": c["clicks_unique_by_link"],
        "opens_total": c["opens_total"],
        "opens_unique": c["opens_unique"],
        "scomps_total": c["scomps_total"],
        "scomps_unique": c["scomps_unique"],
        "scomps_status_updated": c["scomps_unique"],
        "unsubs_total": c["unsubs_total"],
        "unsubs_unique": c["unsubs_unique"],
        "unsubs_status_updated": c["unsubs_unique"],
        "bounces_status_updated": hard,
        "total_messages": sent,
        "total_success": accepted,
        "total_failure": c["total_failure"],
        "total_failure_toolong": c["total_failure_toolong"],
        "skips_error": 0,
        "skips_request": 0,
        "bounces_unique_by_code": by_code,
        "messages_sent": sent,
        "messages_html": sent,
        "messages_text": 0,
        "accepted": accepted,
        "accepted_rate": _ratio(accepted, sent),
        "in_queue": 0,
        "in_queue_rate": 0.0,
        "max_unique_activities": max(c["opens_unique"], c["clicks_unique"], c["unsubs_unique"], c["scomps_unique"]),
        "open_rate": _ratio(c["opens_unique"], accepted),
        "open_ratio": _ratio(c["opens_total"], c["opens_unique"]),
        "unopened": accepted - c["opens_unique"],
        "duplicate_opens": c["opens_total"] - c["opens_unique"],
        "duplicate_clicks": c["clicks_total"] - c["clicks_unique"],
        "click_rate": _ratio(c["clicks_unique"], accepted),
        "click_to_open_rate": _ratio(c["clicks_unique"], c["opens_unique"]),
        "unclicked": accepted - c["clicks_unique"],
        "bounced": unique,
        "duplicate_bounces": bounces_total - unique,
        "unbounced": sent - unique,
        "bounce_rate": _ratio(unique, sent),
        "bounce_rate_hard": _ratio(hard, unique),
        "bounce_rate_soft": _ratio(soft, unique),
        "bounce_rate_other": _ratio(other, unique),
        "bounce_local_rate": _ratio(local, unique),
        "duplicate_scomps": c["scomps_total"] - c["scomps_unique"],
        "duplicate_unsubs": c["unsubs_total"] - c["unsubs_unique"],
        "unsub_rate": _ratio(c["unsubs_unique"], accepted),
    }


# --------------------------------------------------------------------- serialisers
# JSON shapes follow the doc's examples ("Get a list of campaigns", "Get campaign
# details", link_stats); field order as there.


def _html(store: InboxFirstStore, campaign: Campaign, content: Content) -> str:
    """A short HTML body showing the content's first three links (kept: it never
    changes, and lists and details show it on every read)."""
    key = (campaign.id, content.id)
    html = store.html_cache.get(key)
    if html is None:
        urls = [url for url, _, _, _ in islice(store.raw_links(campaign, content), 3)]
        anchors = "".join(f'<p><a href="{url}">{url.split("?")[0]}</a></p>' for url in urls)
        html = f"<!DOCTYPE html>\n<html>\n<head>\n</head>\n<body>\n<h1>{content.subject}</h1>\n{anchors}\n</body>\n</html>"
        store.html_cache[key] = html
    return html


def _text(content: Content) -> str:
    return content.subject if content.format == "both" else ""


def _dispatch_state(campaign: Campaign, now: datetime) -> tuple[str, str, datetime | None]:
    """(state, state_description, finished_at as visible at ``now``)."""
    if campaign.is_draft:
        return "idle", "Step 1: Pending", None
    assert campaign.finished_at is not None
    if campaign.finished_at > now:
        return "sending", "Step 3: Sending", None
    return "finished", "Step 4: Finished", campaign.finished_at


def _updated_at(campaign: Campaign, now: datetime) -> datetime:
    _, _, finished = _dispatch_state(campaign, now)
    return finished or campaign.started_at or campaign.created_at


def list_item(store: InboxFirstStore, campaign: Campaign, now: datetime) -> dict[str, Any]:
    """One element of the campaign list: the doc's example row plus the documented
    ``dispatch`` subset (state, state_description, paused, begins_at, started_at,
    finished_at)."""
    first = campaign.contents[0]
    state, description, finished = _dispatch_state(campaign, now)
    return {
        "id": campaign.id,
        "content_html": _html(store, campaign, first),
        "stats": None,
        # Doc-shaped: null, as in the doc's list example.
        "segmentation_criteria_id": None if campaign.is_draft or store.world.doc_shapes else campaign.mailing_list_id,
        "created_at": iso(campaign.created_at),
        "organization_id": ORGANIZATION_ID,
        "mailing_list_name": store.mailing_lists[campaign.mailing_list_id],
        "archived": False,
        "content_determined": True,
        "mailing_list_id": campaign.mailing_list_id,
        "content_subject": first.subject,
        "active_html_editor": "wysiwyg",
        "email_format": first.format,
        "content_text": _text(first),
        "updated_at": iso(_updated_at(campaign, now)),
        "organization_name": ORGANIZATION_NAME,
        "name": campaign.name,
        "dispatch": {
            "state": state,
            "state_description": description,
            "paused": False,
            "begins_at": iso(campaign.begins_at),
            "started_at": iso(campaign.started_at),
            "finished_at": iso(finished),
        },
    }


def _snapshot(store: InboxFirstStore, campaign: Campaign, content: Content, index: int, taken_at: datetime) -> dict[str, Any]:
    s = stat_summary(store.content_counters(campaign, content, taken_at), content.format)
    keys = [
        "bounces_status_updated", "bounces_total", "bounces_unique", "bounces_unique_by_code", "bounces_unique_hard",
        "bounces_unique_local", "bounces_unique_other", "bounces_unique_remote", "bounces_unique_soft",
        "clicks_total", "clicks_unique", "clicks_unique_by_link",
    ]
    out: dict[str, Any] = {k: s[k] for k in keys}
    out["id"] = campaign.id * 10 + index + 1
    for k in ["opens_total", "opens_unique", "scomps_status_updated", "scomps_total", "scomps_unique",
              "sent_html", "sent_multipart", "sent_text", "skips_error", "skips_request"]:
        out[k] = s[k]
    out["snapshot_group"] = hashlib.md5(f"inboxfirst-aws-{campaign.id}".encode()).hexdigest()
    out["stat_id"] = campaign.stat_id
    out["stat_slice_id"] = campaign.stat_id * 10 + index + 1
    out["taken_at"] = iso(taken_at)
    for k in ["total_failure", "total_failure_toolong", "total_messages", "total_success",
              "unsubs_status_updated", "unsubs_total", "unsubs_unique"]:
        out[k] = s[k]
    return out


def _automatic_winner_selection(store: InboxFirstStore, campaign: Campaign, now: datetime) -> dict[str, Any] | None:
    if not campaign.is_split_test or campaign.started_at is None:
        return None
    taken_at = campaign.started_at + timedelta(hours=campaign.autowinner_delay_hours)
    if taken_at > now:
        return {"state": "decision_delay", "winning_content": None, "snapshots": []}
    winner = max(campaign.contents, key=lambda c: c.share)
    return {
        "state": "finished",
        "winning_content": {"id": winner.id, "name": winner.name},
        "snapshots": [
            {
                "content": {"id": c.id, "name": c.name, "is_winner": c is winner},
                "snapshot": _snapshot(store, campaign, c, k, taken_at),
            }
            for k, c in enumerate(campaign.contents)
        ],
    }


def details(store: InboxFirstStore, campaign: Campaign, now: datetime, include_engine_sendid: bool = False) -> dict[str, Any]:
    """``data`` of "Get campaign details". Drafts (never sent) carry ``"stats": null``
    and no stat_summary/content_stats, like the doc's idle campaign example."""
    first = campaign.contents[0]
    state, description, finished = _dispatch_state(campaign, now)
    out: dict[str, Any] = {
        "active_html_editor": "wysiwyg",
        "archived": False,
        "content_determined": True,
        "created_at": iso(campaign.created_at),
        "id": campaign.id,
        "mailing_list_id": campaign.mailing_list_id,
        "name": campaign.name,
        "organization_id": ORGANIZATION_ID,
        "segmentation_criteria_id": None if campaign.is_draft else campaign.mailing_list_id,
        "template": False,
        "updated_at": iso(_updated_at(campaign, now)),
        "mailing_list_name": store.mailing_lists[campaign.mailing_list_id],
        "organization_name": ORGANIZATION_NAME,
        "x_campaign_id": str(campaign.stat_id),
        "content_subject": first.subject,
        "email_format": first.format,
        "content_html": _html(store, campaign, first),
        "content_text": _text(first),
    }
    if campaign.is_draft:
        out["stats"] = None
    else:
        per_content = []
        total: dict[str, int] = {"sent_html": 0, "sent_multipart": 0}
        for k, content in enumerate(campaign.contents):
            counters = store.content_counters(campaign, content, now)
            summary = stat_summary(counters, content.format)
            total["sent_html"] += summary["sent_html"]
            total["sent_multipart"] += summary["sent_multipart"]
            for key, value in counters.items():
                total[key] = total.get(key, 0) + value
            # The doc's content-level summaries carry stat_slice_id where the campaign's has stat_id.
            summary = _with_id_after(summary, "skips_request", "stat_slice_id", campaign.stat_id * 10 + k + 1)
            per_content.append(
                {"content": {"id": content.id, "name": content.name}, "stat_summary": None if store.stats_null(campaign) else summary}
            )
        out["stat_summary"] = (
            None if store.stats_null(campaign) else _with_id_after(stat_summary(total, None), "skips_request", "stat_id", campaign.stat_id)
        )
        out["content_stats"] = per_content
        out["automatic_winner_selection"] = _automatic_winner_selection(store, campaign, now)
    # Doc-shaped: null where the doc's examples show null (no split test; no reply-to
    # or sender address).
    doc_null = store.world.doc_shapes
    no_split = doc_null and not campaign.is_split_test
    out["dispatch"] = {
        "autowinner_delay_amount": None if no_split else (campaign.autowinner_delay_hours if campaign.is_split_test else 1),
        "autowinner_delay_unit": "hours",
        "autowinner_enabled": campaign.is_split_test,
        "autowinner_metric": None if no_split else "opens_unique",
        "autowinner_percentage": None if no_split else "20.0",
        "begins_at": iso(campaign.begins_at),
        "finished_at": iso(finished),
        "from_email": f"news@list{campaign.mailing_list_id}.acme-outdoor.test",
        "from_name": campaign.from_name,
        "paused": False,
        "reply_to": None if doc_null else "",
        "sender_email": None if doc_null else "",
        "speed": 0,
        "started_at": iso(campaign.started_at),
        "state": state,
        "track_links": True,
        "track_opens": True,
        "url_domain_id": 1,
        "virtual_mta_id": 0,
        "state_description": description,
        "virtual_mta_name": "System Default Route",
        "virtual_mta_type": "default_route",
        "bounce_email_user_id": 1,
        "bounce_email_domain_id": 1,
        "bounce_email_email": "return@bounces.acme-outdoor.test",
        "url_domain_domain": "click.acme-outdoor.test",
        "seed_lists": [],
        "special_sending_rule_id": None,
        "special_sending_rule_name": None,
        "seed_list_id": None,
        "seed_list_name": None,
    }
    out["campaign_contents"] = [
        {
            "id": c.id,
            "name": c.name,
            "subject": c.subject,
            "html": _html(store, campaign, c),
            "text": _text(c),
            "format": c.format,
        }
        for c in campaign.contents
    ]
    out["segmentation_criteria_name"] = None
    if include_engine_sendid:
        out["engine_sendid"] = f"s4-{campaign.stat_id}"
    return out


def _with_id_after(summary: dict[str, Any], after: str, key: str, value: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in summary.items():
        out[k] = v
        if k == after:
            out[key] = value
    return out
