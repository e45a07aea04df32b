"""Marin Social store: the dimensions (accounts, advertisers, media plans,
campaigns, ad sets, ads) and their daily statistics. No HTTP here.

Statistics are a pure function of (seed, scale, now): an ad's *final* figures for
a day come from ``world.rng("marin-ad-day", ad_id, day_offset)``; what the API
shows is the final figures scaled down by a maturity factor while the day is
younger than ``RESTATEMENT_DAYS`` (and by the elapsed share of the day for the
account's current, partial day). Every level above the ad (ad set, campaign, media
plan) is the exact integer sum of its ads' visible figures, so levels tie out.

Money is handled in integer cents of the account's currency throughout.
"""

from __future__ import annotations

import copy
import math
import random
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache
from operator import add
from typing import Any
from zoneinfo import ZoneInfo

from sandbox.core import json_str, to_json
from sandbox.world import Account, AdCampaign, World

# Contract (README, Marin Social): main_metrics entries counted as conversions.
CONVERSION_NAMES = ("leadgen.other", "app_custom_event.fb_mobile_purchase", "mobile_app_install")

# Vendor doc, statistics examples: every row lists these main_metrics, in this order.
MAIN_METRIC_NAMES = (
    "like",
    "rsvp",
    "post_like",
    "comment",
    "post",
    "photo_view",
    "video_view",
    "estimated_ad_recallers",
    "mobile_app_install",
    "deeplink_clicks",
    "app_custom_event.fb_mobile_purchase",
    "app_install",
    "credit_spent",
    "call_to_action_clicks",
    "website_clicks",
    "receive_offer",
    "leadgen.other",
    "link_click",
    "store_visits",
)

# The metrics the synthetic world fills; the others are always 0 (as most are in
# real accounts). Layout of a figures vector: impressions, clicks, spent cents, then
# (number, amount cents) for each of these, in this order.
ACTIVE_METRICS = (
    "link_click",
    "post_like",
    "comment",
    "photo_view",
    "video_view",
    "like",
    "call_to_action_clicks",
    "estimated_ad_recallers",
    "mobile_app_install",
    "app_custom_event.fb_mobile_purchase",
    "leadgen.other",
)
IMPRESSIONS, CLICKS, SPENT = 0, 1, 2
VECTOR_LEN = 3 + 2 * len(ACTIVE_METRICS)


def metric_slot(name: str) -> int:
    """Index of a metric's ``number`` in a figures vector (``amount`` is the next one)."""
    return 3 + 2 * ACTIVE_METRICS.index(name)


CONVERSION_SLOTS = frozenset(s for name in CONVERSION_NAMES for s in (metric_slot(name), metric_slot(name) + 1))
_LINK_CLICK, _POST_LIKE, _COMMENT, _PHOTO_VIEW, _VIDEO_VIEW, _LIKE, _CTA_CLICKS, _RECALLERS, _INSTALLS, _PURCHASES, _LEADS = (
    metric_slot(name) for name in ACTIVE_METRICS
)

# Contract: figures of the last 3 days may still change. Per-mille share of the
# final figure visible at a given age (days) in the account's timezone: delivery
# (impressions, clicks, spend, engagement) settles fast, conversions (attribution
# windows) slowly. From RESTATEMENT_DAYS on, figures are final.
RESTATEMENT_DAYS = 3
DELIVERY_MATURITY = {0: 960, 1: 990, 2: 996}
CONVERSION_MATURITY = {0: 700, 1: 860, 2: 950}

# Bounded so that --scale 100 does not keep every ad-day in memory.
FINAL_CACHE_SIZE = 100_000
# truth() of recent worlds: a function of the world (seed, scale, and its start,
# where its day offsets count from) and its clock alone, since the catalogue never
# changes and the statistics follow the clock (MarinSocialEmulator.advance). It sums
# every ad and day (~0.5 s at scale 1), once per test that checks a load against it.
_TRUTHS: OrderedDict[tuple[Any, ...], dict[str, Any]] = OrderedDict()
_TRUTHS_LOCK = threading.Lock()
TRUTHS_KEPT = 8

LEVELS = ("client", "campaign", "adset", "ad")
AGGREGATES = ("period", "day", "month")

# Facebook media plan objectives (vendor doc, "Create a new media plan"); they decide
# which conversions a plan's ads produce.
_OBJECTIVES = ("lead_gen", "mobile_app_install", "outside_traffic")
_OBJECTIVE_LABEL = {"lead_gen": "Lead Gen", "mobile_app_install": "App Installs", "outside_traffic": "Traffic"}


@dataclass(frozen=True)
class Advertiser:
    id: str
    name: str
    currency: str
    reporting_week: str


# Doc "Get all Accounts": the second account is a Twitter one ("src": "tw") with
# "funding_instruments" and no "currency". The world's accounts are Facebook ones;
# this Marin-only account has one media plan of paused Twitter campaigns, which
# have no ad sets (doc "Create a new Ad Set": "Only available for Facebook
# Campaigns"), no ads and no statistics, so the other APIs and every statistics
# total are the same as without it.
TWITTER_ACCOUNT = Account("act_2001", "Acme Outdoor Twitter", None, "America/Chicago")  # type: ignore[arg-type]
TWITTER_FUNDING_INSTRUMENTS = ("a1b2c3",)
TWITTER_PLAN_ID = "951"
# (id, name, created_day, daily_budget, lifetime_budget) of the Twitter campaigns.
TWITTER_CAMPAIGNS = (
    ("23849990001", "Always-On Boots - Followers", 5, 10, 200),
    ("23849990002", "Launch Kayaks - Promoted Tweets", 12, 25, 750),
)


@dataclass(frozen=True)
class MediaPlan:
    id: str
    name: str
    account_id: str
    advertiser_id: str
    io_number: str
    general_objective: str
    account_network_id: str
    business_manager_id: str
    report_hash: str
    lead_value_cents: int  # what one lead is worth to this plan (leadgen.other amount)
    src: str = "fb"


@dataclass(frozen=True)
class Campaign:
    id: str
    name: str
    index: int  # position in world.marin_campaigns
    account_id: str
    client_id: str  # media plan id
    created_day: int
    daily_budget: int
    special_ad_category: str
    report_hash: str
    src: str = "fb"
    lifetime_budget: int | None = None


@dataclass(frozen=True)
class AdSet:
    id: str
    name: str
    campaign_id: str
    client_id: str
    daily_budget: int
    bid: str
    promoted_object: str
    optimization_goal: str


@dataclass(frozen=True)
class Ad:
    id: str
    name: str
    adset_id: str
    campaign_id: str
    client_id: str
    account_id: str
    created_day: int
    type: str
    bid: float
    page: str
    # Generation parameters (not shown by the API).
    base_impressions: int
    ctr: float
    cpm_cents: float
    link_share: float
    lead_rate: float
    install_rate: float
    purchase_rate: float
    order_value_cents: int


def cents_to_decimal(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)


def cents_to_json(cents: int) -> int | float:
    """Money as a JSON number with at most two decimals (the doc shows numbers, and
    whole amounts as integers like ``0``).

    ``cents / 100`` is the double nearest to the exact value, and Python prints the
    shortest text that reads back as that double, so the JSON text is exact.
    """
    return cents // 100 if cents % 100 == 0 else cents / 100


class MarinStore:
    def __init__(self, world: World) -> None:
        self.world = world
        self.accounts: list[Account] = [*world.accounts, TWITTER_ACCOUNT]
        self.account_by_id = {a.id: a for a in self.accounts}
        self.tz = {a.id: ZoneInfo(a.timezone) for a in self.accounts}
        self.account_network_id = {a.id: str(world.rng("marin-account", a.id).randint(10**17, 10**18 - 1)) for a in self.accounts}
        self.advertisers = self._make_advertisers()
        self.advertiser_by_id = {a.id: a for a in self.advertisers}
        self.campaigns: list[Campaign] = []
        self.adsets_by_campaign: dict[str, list[AdSet]] = {}
        self.ads_by_adset: dict[str, list[Ad]] = {}
        self.media_plans = self._make_media_plans(world.marin_campaigns)
        self.plan_by_id = {p.id: p for p in self.media_plans}
        self.plan_by_io = {p.io_number: p for p in self.media_plans}
        for i, source in enumerate(world.marin_campaigns):
            self._add_campaign(i, source)
        self._add_twitter()
        self.campaign_by_id = {c.id: c for c in self.campaigns}
        self.adset_by_id = {s.id: s for sets in self.adsets_by_campaign.values() for s in sets}
        self.ad_by_id = {a.id: a for ads in self.ads_by_adset.values() for a in ads}
        self._final = lru_cache(maxsize=FINAL_CACHE_SIZE)(self._generate_final)
        self._local = threading.local()  # a generator per server thread (_generate_final)
        self._labels: dict[int, tuple[str, str]] = {}  # day offset -> (YYYY-MM-DD, YYYY-MM)
        # Statistics rows of recent queries: a client pages through one query, and
        # each page would otherwise rebuild every row. Keyed by the clock too.
        self._stats_cache: dict[tuple[Any, ...], list[tuple[str, list[int]]]] = {}

    # ---------------------------------------------------------------- dimensions
    def _make_advertisers(self) -> list[Advertiser]:
        return [
            Advertiser("101", "Acme Outdoor Americas", "USD", "Monday_Sunday"),
            Advertiser("102", "Acme Outdoor Europe", "EUR", "Monday_Sunday"),
            Advertiser("103", "Acme Outdoor UK", "GBP", "Saturday_Friday"),
            Advertiser("104", "Acme Outdoor Labs", "USD", "Sunday_Saturday"),  # no media plan yet
        ]

    def _advertiser_for(self, account: Account) -> str:
        return {"USD": "101", "EUR": "102", "GBP": "103"}[account.currency]

    def _make_media_plans(self, campaigns: list[AdCampaign]) -> list[MediaPlan]:
        plans: dict[str, MediaPlan] = {}
        for c in campaigns:
            if c.media_plan_id is None or c.media_plan_id in plans:
                continue
            rng = self.world.rng("marin-media-plan", c.media_plan_id)
            account = self.account_by_id[c.account_id]
            # Plans of one account take the objectives in turn (world: 3 plans per account).
            objective = _OBJECTIVES[sum(1 for p in plans.values() if p.account_id == account.id) % len(_OBJECTIVES)]
            plans[c.media_plan_id] = MediaPlan(
                id=c.media_plan_id,
                name=f"{account.name} - {_OBJECTIVE_LABEL[objective]}",
                account_id=account.id,
                advertiser_id=self._advertiser_for(account),
                io_number=f"IO-{self.world.seed % 1000:03d}-{c.media_plan_id}",
                general_objective=objective,
                account_network_id=self.account_network_id[account.id],
                business_manager_id=str(rng.randint(10**15, 10**16 - 1)),
                report_hash=f"{rng.getrandbits(96):024x}",
                lead_value_cents=rng.choice([1500, 2500, 4000]) if objective == "lead_gen" else 0,
            )
        return sorted(plans.values(), key=lambda p: int(p.id))

    def _add_campaign(self, i: int, source: AdCampaign) -> None:
        assert source.media_plan_id is not None
        rng = self.world.rng("marin-campaign-shape", i)
        plan = self.plan_by_id[source.media_plan_id]
        campaign = Campaign(
            id=source.id,
            name=source.name,
            index=i,
            account_id=source.account_id,
            client_id=source.media_plan_id,
            created_day=source.created_day,
            daily_budget=rng.choice([20, 30, 50, 75, 100, 150, 200]),
            special_ad_category="none",
            report_hash=f"{rng.getrandbits(96):024x}",
        )
        self.campaigns.append(campaign)
        n_sets = rng.randint(2, 4)
        sets: list[AdSet] = []
        for j in range(n_sets):
            adset_id = str(23850000000 + i * 10 + j)
            goal = {"lead_gen": "lead_generation", "mobile_app_install": "app_installs"}.get(plan.general_objective, "link_clicks")
            adset = AdSet(
                id=adset_id,
                name=f"{source.name} - adset {j + 1}",
                campaign_id=campaign.id,
                client_id=campaign.client_id,
                daily_budget=max(1, campaign.daily_budget // n_sets),
                bid=f"{rng.randint(20, 250) / 100:.2f}",
                promoted_object=str(rng.randint(100000, 999999)),
                optimization_goal=goal,
            )
            sets.append(adset)
            n_ads = rng.randint(1, 3)
            self.ads_by_adset[adset_id] = [self._make_ad(campaign, plan, adset, j, k, n_sets * n_ads) for k in range(n_ads)]
        self.adsets_by_campaign[campaign.id] = sets

    def _add_twitter(self) -> None:
        rng = self.world.rng("marin-twitter")
        plan = MediaPlan(
            id=TWITTER_PLAN_ID,
            name=f"{TWITTER_ACCOUNT.name} - Traffic",
            account_id=TWITTER_ACCOUNT.id,
            advertiser_id="101",
            io_number=f"IO-{self.world.seed % 1000:03d}-{TWITTER_PLAN_ID}",
            general_objective="outside_traffic",
            account_network_id=self.account_network_id[TWITTER_ACCOUNT.id],
            business_manager_id=str(rng.randint(10**15, 10**16 - 1)),
            report_hash=f"{rng.getrandbits(96):024x}",
            lead_value_cents=0,
            src="tw",
        )
        self.media_plans.append(plan)
        self.plan_by_id[plan.id] = plan
        self.plan_by_io[plan.io_number] = plan
        for cid, name, created, daily, lifetime in TWITTER_CAMPAIGNS:
            self.campaigns.append(
                Campaign(cid, name, -1, TWITTER_ACCOUNT.id, plan.id, created, daily, "none", f"{rng.getrandbits(96):024x}", "tw", lifetime)
            )
            self.adsets_by_campaign[cid] = []

    def _make_ad(self, campaign: Campaign, plan: MediaPlan, adset: AdSet, j: int, k: int, share: int) -> Ad:
        ad_id = str(23860000000 + campaign.index * 100 + j * 10 + k)
        rng = self.world.rng("marin-ad", ad_id)
        cpm_cents = rng.uniform(300, 1500)
        # Size impressions so that a campaign spends about its daily budget.
        base = int(campaign.daily_budget * 100 / share / cpm_cents * 1000)
        objective = plan.general_objective
        return Ad(
            id=ad_id,
            name=f"{campaign.name} - ad {j + 1}.{k + 1}",
            adset_id=adset.id,
            campaign_id=campaign.id,
            client_id=campaign.client_id,
            account_id=campaign.account_id,
            created_day=campaign.created_day,
            type=rng.choice(["page_post_ad", "bulk_page_post_ad"]),
            bid=round(rng.uniform(0.01, 1.5), 2),
            page=str(rng.randint(10**8, 10**9 - 1)),
            base_impressions=max(200, base),
            ctr=rng.uniform(0.006, 0.03),
            cpm_cents=cpm_cents,
            link_share=rng.uniform(0.55, 0.9),
            lead_rate=rng.uniform(0.03, 0.09) if objective == "lead_gen" else 0.0,
            install_rate=rng.uniform(0.05, 0.12) if objective == "mobile_app_install" else 0.0,
            purchase_rate=rng.uniform(0.05, 0.2) if objective == "mobile_app_install" else 0.0,
            order_value_cents=rng.randint(2000, 12000),
        )

    def plan(self, ident: str) -> MediaPlan | None:
        """A media plan by id or io_number (vendor doc: "id or io_number of the client")."""
        return self.plan_by_id.get(ident) or self.plan_by_io.get(ident)

    def campaigns_of(self, plan_id: str) -> list[Campaign]:
        return [c for c in self.campaigns if c.client_id == plan_id]

    def ads_of_campaign(self, campaign_id: str) -> list[Ad]:
        return [ad for s in self.adsets_by_campaign[campaign_id] for ad in self.ads_by_adset[s.id]]

    # ----------------------------------------------------------------------- time
    def midnight(self, account_id: str, day: date) -> datetime:
        return datetime.combine(day, time(0), tzinfo=self.tz[account_id])

    def local_today(self, account_id: str) -> date:
        """The account's latest day that has started: its midnight is before now.

        A day whose midnight is exactly ``now`` has no elapsed time and no figures yet.
        """
        today = self.world.now.astimezone(self.tz[account_id]).date()
        if self.midnight(account_id, today) >= self.world.now:
            today -= timedelta(days=1)
        return today

    def campaign_days(self, campaign: Campaign | Ad) -> list[date]:
        """The account-local dates with figures: from creation through the partial today."""
        first = self.world.day(campaign.created_day)
        last = self.local_today(campaign.account_id)
        return [first + timedelta(days=n) for n in range((last - first).days + 1)]

    # ---------------------------------------------------------------- statistics
    def _generate_final(self, ad_id: str, offset: int) -> tuple[int, ...]:
        """An ad's final (fully matured) figures for one day; never depends on now.

        ``a + (b - a) * random()`` is ``rng.uniform(a, b)``, spelled out: this runs
        once per ad and day (over 100,000 times for a scale-10 history)."""
        ad = self.ad_by_id[ad_id]
        rng = getattr(self._local, "rng", None)
        if rng is None:
            rng = self._local.rng = random.Random(0)
        rnd = self.world.reseed(rng, "marin-ad-day", ad_id, offset).random
        v = [0] * VECTOR_LEN
        impressions = int(ad.base_impressions * (0.6 + (1.4 - 0.6) * rnd()))
        clicks = round(impressions * ad.ctr * (0.8 + (1.2 - 0.8) * rnd()))
        link = round(clicks * ad.link_share)
        v[IMPRESSIONS], v[CLICKS] = impressions, clicks
        v[SPENT] = round(impressions * ad.cpm_cents / 1000 * (0.9 + (1.1 - 0.9) * rnd()))
        v[_LINK_CLICK] = link
        v[_POST_LIKE] = round(impressions * (0.001 + (0.004 - 0.001) * rnd()))
        v[_COMMENT] = round(impressions * (0.0 + (0.0006 - 0.0) * rnd()))
        v[_PHOTO_VIEW] = round(impressions * (0.0 + (0.01 - 0.0) * rnd()))
        v[_VIDEO_VIEW] = round(impressions * (0.01 + (0.05 - 0.01) * rnd()))
        v[_LIKE] = round(clicks * (0.0 + (0.05 - 0.0) * rnd()))
        v[_CTA_CLICKS] = round(link * (0.3 + (0.6 - 0.3) * rnd()))
        v[_RECALLERS] = round(impressions * (0.02 + (0.06 - 0.02) * rnd()))
        leads = round(link * ad.lead_rate * (0.5 + (1.5 - 0.5) * rnd()))
        installs = round(link * ad.install_rate * (0.5 + (1.5 - 0.5) * rnd()))
        purchases = round(installs * ad.purchase_rate * (0.5 + (1.5 - 0.5) * rnd()))
        plan = self.plan_by_id[ad.client_id]
        v[_LEADS] = leads
        v[_LEADS + 1] = leads * plan.lead_value_cents
        v[_INSTALLS] = installs
        v[_PURCHASES] = purchases
        v[_PURCHASES + 1] = round(purchases * ad.order_value_cents * (0.8 + (1.2 - 0.8) * rnd()))
        return tuple(v)

    def visible(self, ad: Ad, day: date, today: date) -> tuple[int, ...]:
        """What the API shows today for ``ad`` on ``day`` (an account-local date)."""
        final = self._final(ad.id, self.world.day_offset(day))
        age = (today - day).days
        if age >= RESTATEMENT_DAYS:
            return final
        num, den = 1, 1
        if age == 0:
            # The current day is partial: only the elapsed share of it has happened.
            start = self.midnight(ad.account_id, day)
            end = self.midnight(ad.account_id, day + timedelta(days=1))  # 23h/25h on DST days
            num, den = int((self.world.now - start).total_seconds()), int((end - start).total_seconds())
        delivery, conversion = DELIVERY_MATURITY[age], CONVERSION_MATURITY[age]
        return tuple(
            value * (conversion if slot in CONVERSION_SLOTS else delivery) * num // (1000 * den) for slot, value in enumerate(final)
        )

    def day_window(self, account_id: str, start: datetime | None, end: datetime | None) -> tuple[date | None, date | None]:
        """[first, stop) account-local dates whose midnight lies in [start, end)."""
        first = stop = None
        tz = self.tz[account_id]
        if start is not None:
            first = start.astimezone(tz).date()
            if self.midnight(account_id, first) < start:
                first += timedelta(days=1)
        if end is not None:
            stop = end.astimezone(tz).date()
            if self.midnight(account_id, stop) < end:
                stop += timedelta(days=1)
        return first, stop

    def statistics(
        self,
        plan: MediaPlan,
        ads: list[Ad],
        level: str,
        aggregate: str,
        start: datetime | None,
        end: datetime | None,
    ) -> list[tuple[str, list[int]]]:
        """Statistics rows for ``ads`` (all in ``plan``), grouped by level and period,
        as (id/date columns as JSON object members, summed figures): ``stats_row``
        renders only the page shown."""
        key = (plan.id, tuple(a.id for a in ads), level, aggregate, start, end, self.world.now)
        cached = self._stats_cache.get(key)
        if cached is not None:
            return cached
        first, stop = self.day_window(plan.account_id, start, end)
        today = self.local_today(plan.account_id)
        # Day offsets rather than dates, and each ad-day's vector added in one go:
        # the same buckets as walking campaign_days() and visible() date by date.
        base = self.world.start.date()
        today_offset = (today - base).days
        low = None if first is None else (first - base).days
        high = None if stop is None else (stop - base).days
        last_offset: dict[str, int] = {}  # account -> offset of its local today
        labels = self._period_labels(aggregate)
        final = self._final
        buckets: dict[tuple[str, str], list[int]] = {}
        ids: dict[str, dict[str, str]] = {}
        for ad in ads:
            group = {"client": ad.client_id, "campaign": ad.campaign_id, "adset": ad.adset_id, "ad": ad.id}[level]
            if group not in ids:
                ids[group] = self._ids(ad, level)
            last = last_offset.get(ad.account_id)
            if last is None:
                last = last_offset[ad.account_id] = (self.local_today(ad.account_id) - base).days
            begin, end_offset = ad.created_day, last + 1
            if low is not None and low > begin:
                begin = low
            if high is not None and high < end_offset:
                end_offset = high
            for offset in range(begin, end_offset):
                if today_offset - offset >= RESTATEMENT_DAYS:
                    figures = final(ad.id, offset)
                else:
                    figures = self.visible(ad, base + timedelta(days=offset), today)
                bucket = (labels(offset), group)
                acc = buckets.get(bucket)
                buckets[bucket] = list(figures) if acc is None else list(map(add, acc, figures))
        rows = []
        ids_text = {group: to_json(columns)[1:-1] for group, columns in ids.items()}
        for period, group in sorted(buckets):
            head = ids_text[group]
            if aggregate == "day":
                head += f',"date":{json_str(period)}'
            elif aggregate == "month":
                head += f',"month":{json_str(period)}'
            rows.append((head, buckets[(period, group)]))
        if len(self._stats_cache) > 16:
            self._stats_cache.clear()
        self._stats_cache[key] = rows
        return rows

    def _period_labels(self, aggregate: str) -> Callable[[int], str]:
        """Day offset -> the row's period: its date (day), month (month) or "" (period)."""
        if aggregate == "period":
            return lambda offset: ""
        column = 0 if aggregate == "day" else 1
        known = self._labels

        def label(offset: int) -> str:
            texts = known.get(offset)
            if texts is None:
                day = self.world.day(offset)
                texts = known[offset] = (day.isoformat(), day.strftime("%Y-%m"))
            return texts[column]

        return label

    @staticmethod
    def _ids(ad: Ad, level: str) -> dict[str, str]:
        """The id columns of a row at ``level``: the object's id and its parents'."""
        out = {"client_id": ad.client_id}
        if level in ("campaign", "adset", "ad"):
            out["campaign_id"] = ad.campaign_id
        if level in ("adset", "ad"):
            out["adset_id"] = ad.adset_id
        if level == "ad":
            out["ad_id"] = ad.id
        return out

    # ---------------------------------------------------------------------- truth
    def truth(self) -> dict[str, Any]:
        # A world advanced to a moment differs from one made at it (another start).
        key = (self.world.seed, self.world.scale, self.world.start, self.world.now)
        with _TRUTHS_LOCK:
            known = _TRUTHS.get(key)
            if known is not None:
                _TRUTHS.move_to_end(key)
                return copy.deepcopy(known)
        truth = self._truth()
        with _TRUTHS_LOCK:
            _TRUTHS[key] = copy.deepcopy(truth)
            while len(_TRUTHS) > TRUTHS_KEPT:
                _TRUTHS.popitem(last=False)
        return truth

    def _truth(self) -> dict[str, Any]:
        ad_total, campaign_total = _Totals(), _Totals()
        plan_totals: dict[str, _Totals] = {p.id: _Totals() for p in self.media_plans}
        for campaign in self.campaigns:
            currency = self.account_by_id[campaign.account_id].currency
            today = self.local_today(campaign.account_id)
            ads = self.ads_of_campaign(campaign.id)
            if not ads:  # Twitter campaigns: no ads, no statistics rows
                continue
            for day in self.campaign_days(campaign):
                day_sum = [0] * VECTOR_LEN
                for ad in ads:
                    figures = self.visible(ad, day, today)
                    ad_total.add(figures, currency)
                    for slot, value in enumerate(figures):
                        day_sum[slot] += value
                campaign_total.add(day_sum, currency)
                plan_totals[campaign.client_id].add(day_sum, currency)
        n_adsets = sum(len(s) for s in self.adsets_by_campaign.values())
        return {
            "accounts": {"count": len(self.accounts)},
            "advertisers": {"count": len(self.advertisers)},
            "media_plans": {"count": len(self.media_plans), "by_id": {pid: t.as_dict() for pid, t in plan_totals.items()}},
            "campaigns": {"count": len(self.campaigns)},
            "ad_sets": {"count": n_adsets},
            "ads": {"count": len(self.ad_by_id)},
            "campaign_stats_daily": campaign_total.as_dict(),
            "ad_stats_daily": ad_total.as_dict(),
        }


class _Totals:
    """Row count and sums of daily statistics rows, money per currency."""

    def __init__(self) -> None:
        self.count = 0
        self.impressions = 0
        self.clicks = 0
        self.spent: dict[str, int] = {}
        self.conversions = {name: 0 for name in CONVERSION_NAMES}
        self.value: dict[str, int] = {}

    def add(self, figures: Iterable[int], currency: str) -> None:
        v = list(figures)
        self.count += 1
        self.impressions += v[IMPRESSIONS]
        self.clicks += v[CLICKS]
        self.spent[currency] = self.spent.get(currency, 0) + v[SPENT]
        for name in CONVERSION_NAMES:
            self.conversions[name] += v[metric_slot(name)]
            self.value[currency] = self.value.get(currency, 0) + v[metric_slot(name) + 1]

    def as_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "sum_impressions": self.impressions,
            "sum_clicks": self.clicks,
            "sum_spent_by_currency": {c: str(cents_to_decimal(v)) for c, v in sorted(self.spent.items())},
            "sum_conversions": sum(self.conversions.values()),
            "sum_conversions_by_name": dict(self.conversions),
            "sum_conversions_value_by_currency": {c: str(cents_to_decimal(v)) for c, v in sorted(self.value.items())},
        }


def _ratio(num: float, den: float, factor: float = 1.0) -> float:
    return round(num * factor / den, 4) if den else 0


# main_metrics as JSON text: the inactive metrics are constants, the active ones
# take (amount, number) in the order of MAIN_METRIC_NAMES.
_METRICS_TEMPLATE = ",".join(
    f'{{"name":{json_str(name)},"amount":%s,"number":%d,"object_id":""}}'
    if name in ACTIVE_METRICS
    else f'{{"name":{json_str(name)},"amount":0,"number":0,"object_id":""}}'
    for name in MAIN_METRIC_NAMES
)
_METRIC_SLOTS = tuple(metric_slot(name) for name in MAIN_METRIC_NAMES if name in ACTIVE_METRICS)
_CONVERSION_NUMBER_SLOTS = tuple(metric_slot(n) for n in CONVERSION_NAMES)


def stats_row(head: str, v: list[int]) -> str:
    """The vendor doc's statistics row for a summed figures vector, after the id
    (and date) columns in ``head`` (JSON object members), as JSON text: what
    json.dumps wrote for the row object (keys, order, int/float types), written
    directly since a page holds up to 300 rows of 19 metrics. Numbers are
    repr()'s, as json.dumps writes them (all finite: ratios have a non-zero
    denominator)."""
    impressions, clicks, spent = v[IMPRESSIONS], v[CLICKS], v[SPENT]
    link = v[_LINK_CLICK]
    c1, c2, c3 = _CONVERSION_NUMBER_SLOTS
    conversions = v[c1] + v[c2] + v[c3]
    income = v[c1 + 1] + v[c2 + 1] + v[c3 + 1]
    values: list[Any] = []
    for slot in _METRIC_SLOTS:
        amount = v[slot + 1]
        values.append(str(amount // 100) if amount % 100 == 0 else repr(amount / 100))  # cents_to_json
        values.append(v[slot])
    return (
        f'{{{head}{"," if head else ""}"ctr":{_ratio(clicks, impressions, 100)!r},'
        f'"ctrLinks":{_ratio(link, impressions, 100)!r},"convRate":{_ratio(conversions, clicks, 100)!r},'
        f'"convRateLinks":{_ratio(conversions, link, 100)!r},"cpc":{_ratio(spent / 100, clicks)!r},'
        f'"cpm":{_ratio(spent / 100, impressions, 1000)!r},"cpa":{_ratio(spent / 100, conversions)!r},'
        f'"income":{cents_to_json(income)!r},"roi":{_ratio(income - spent, spent, 100)!r},'
        f'"main_metrics":[{_METRICS_TEMPLATE % tuple(values)}],"other_metrics":[],"impression":{impressions},'
        f'"click":{clicks},"spent":{cents_to_json(spent)!r}}}'
    )


def nb_pages(total: int, limit: int) -> int:
    return max(1, math.ceil(total / limit))
