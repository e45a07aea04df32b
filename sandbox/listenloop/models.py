"""ListenLoop's store: the campaigns of the shared catalogue, their lifetime counters
and the overlays that API writes (create/edit) leave. No HTTP here.

State is a pure function of (seed, scale, now) plus the overlays: a campaign's
lifetime counters are the sum of deterministic daily figures (a pure function of
(campaign, day)) from its delivery start up to ``world.now``, the current day
counted in whole hours, minus the time it spent paused or archived. So counters
only grow, ``advance`` only moves the clock, and ``truth()`` is computed from the
same functions the routes serve.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from sandbox.world import HISTORY_DAYS, World

# Fixed sandbox credentials (never real-looking production values).
API_TOKEN = "sandbox-listenloop-token-0001"
API_EMAIL = "sandbox-api@acme-outdoor.test"

ORGANIZATION_ID = 1  # the doc's examples show one organization, id 1
NEW_YORK = ZoneInfo("America/New_York")  # the doc's timestamps carry -04:00 (EDT)

STATUSES = ("active", "paused", "archived")  # doc: Campaign Attributes
STRATEGIES = ("CPM", "CPM_PACED", "CPM_OPTIMIZED", "CPC")
PACINGS = ("daily", "lifetime")
TARGETING_KEYS = ("industries", "job_titles", "ip_addresses", "geo")
WEEKDAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
MONEY_FIELDS = ("daily_budget", "bw_lifetime_budget", "user_defined_cpm", "ecpc_target", "max_bid")
# Defaults from the doc's Campaign Attributes table.
DEFAULTS: dict[str, Any] = {
    "user_defined_status": "active",
    "daily_budget": Decimal("15.0"),
    "bw_lifetime_budget": Decimal("10000.0"),
    "user_defined_cpm": Decimal("25.0"),
    "bidding_strategy": "CPM",
    "pacing": "daily",
    "ecpc_target": Decimal("0.02"),
    "max_bid": Decimal("0.02"),
    "frequency_cap_impressions": 20,
    "frequency_cap_duration": 3600,
    "user_defined_aggressiveness": None,
    "destination_url": None,
    "start_date": None,
    "end_date": None,
    "ctc_enabled": False,
    "targeting_strategy": {"geo": True, "industries": True, "job_titles": True},
}


def money(value: Decimal) -> str:
    """Rails renders decimals as "15.0", "0.02": plain notation, at least one decimal."""
    text = format(value.normalize(), "f")
    return text if "." in text else f"{text}.0"


def timestamp(moment: datetime) -> str:
    """"2018-06-20T06:57:50.906-04:00": New York time, milliseconds, offset of that date."""
    return moment.astimezone(NEW_YORK).isoformat(timespec="milliseconds")


def is_cpc(strategy: str) -> bool:
    return strategy == "CPC"


def estimated_spend(strategy: str, cpm: Decimal, ecpc_target: Decimal, impressions: int, clicks: int) -> Decimal:
    """The contract's estimate: impressions x CPM / 1000, or clicks x ecpc_target for CPC
    (the doc's "Campaign eCPC target"; ``max_bid`` is the max CPM bid)."""
    if is_cpc(strategy):
        return clicks * ecpc_target
    return impressions * cpm / 1000


@dataclass
class Pause:
    """A span during which a campaign was paused or archived (``until`` None: still is)."""

    status: str
    since: datetime
    until: datetime | None = None


@dataclass
class Campaign:
    """One campaign: its attributes (doc field names) and its delivery plan."""

    id: int
    index: int | None  # position in world.listenloop_campaigns; None when made via the API
    created_at: datetime
    attrs: dict[str, Any]  # editable attributes, money as Decimal
    delivers: bool = False  # API-made campaigns never deliver: there is no ad server here
    delivery_start: datetime | None = None  # midnight UTC of the first day with delivery
    # Daily volume drivers (pure functions of the catalogue entry).
    daily_impressions: float = 0.0
    ctr: float = 0.0
    views_per_click: float = 0.0
    personalization_share: float = 0.0
    conversion_share: float = 0.0
    accounts_count: int | None = None
    day_parting_ids: list[int] = field(default_factory=list)
    pauses: list[Pause] = field(default_factory=list)
    edited_at: datetime | None = None


# ----------------------------------------------------------------------- validation


class ValidationFailed(Exception):
    def __init__(self, errors: dict[str, list[str]]):
        super().__init__(str(errors))
        self.errors = errors


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float, str)):
        try:
            parsed = Decimal(str(value))
        except InvalidOperation:
            return None
        return parsed if parsed.is_finite() else None
    return None


def clean_attributes(raw: Any, creating: bool) -> dict[str, Any]:
    """Validate a ``campaign`` object; unknown keys are ignored like Rails strong params."""
    if not isinstance(raw, dict):
        raise ValidationFailed({"campaign": ["must be an object"]})
    out: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for key, value in raw.items():
        if key == "name":
            if not isinstance(value, str) or not value.strip():
                errors[key] = ["can't be blank"]
            else:
                out[key] = value.strip()
        elif key in ("user_defined_status", "bidding_strategy", "pacing"):
            choices = {"user_defined_status": STATUSES, "bidding_strategy": STRATEGIES, "pacing": PACINGS}[key]
            if value not in choices:
                errors[key] = [f"is not included in the list ({', '.join(choices)})"]
            else:
                out[key] = value
        elif key in MONEY_FIELDS:
            amount = _decimal(value)
            if amount is None or amount < 0:
                errors[key] = ["must be a number greater than or equal to 0"]
            else:
                out[key] = amount
        elif key in ("frequency_cap_impressions", "frequency_cap_duration", "user_defined_aggressiveness"):
            nullable = key == "user_defined_aggressiveness"
            if (value is None and nullable) or (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
                out[key] = value
            else:
                errors[key] = ["must be an integer greater than or equal to 0"]
        elif key == "ctc_enabled":
            if not isinstance(value, bool):
                errors[key] = ["must be true or false"]
            else:
                out[key] = value
        elif key in ("start_date", "end_date"):
            if value is None:
                out[key] = None
            else:
                try:
                    out[key] = date.fromisoformat(value).isoformat()
                except (TypeError, ValueError):
                    errors[key] = ["must be a date (YYYY-MM-DD)"]
        elif key == "destination_url":
            if value is None or value == "":
                out[key] = None
            elif not isinstance(value, str):
                errors[key] = ["must be a URL"]
            else:
                # The doc's edit example sends "listenloop.com" and gets "http://listenloop.com".
                out[key] = value if re.match(r"^https?://", value) else f"http://{value}"
        elif key == "targeting_strategy":
            if not isinstance(value, dict) or any(k not in TARGETING_KEYS or not isinstance(v, bool) for k, v in value.items()):
                errors[key] = [f"must be an object of true/false flags among {', '.join(TARGETING_KEYS)}"]
            else:
                out[key] = dict(value)
    if creating and "name" not in out and "name" not in errors:
        errors["name"] = ["can't be blank"]
    if errors:
        raise ValidationFailed(errors)
    return out


# ---------------------------------------------------------------------------- store

# impressions, clicks, page views, personalization page views, conversion page views
DailyFigures = tuple[int, int, int, int, int]
ZERO: DailyFigures = (0, 0, 0, 0, 0)


class ListenLoopStore:
    def __init__(self, world: World) -> None:
        self.world = world
        self.campaigns: dict[int, Campaign] = {}
        self._daily: dict[tuple[int, int], DailyFigures] = {}
        for index in range(len(world.listenloop_campaigns)):
            campaign = self._plan(index)
            self.campaigns[campaign.id] = campaign
        self._next_id = max(self.campaigns) + 1
        self._next_day_parting_id = max(i for c in self.campaigns.values() for i in c.day_parting_ids) + 1

    # --------------------------------------------------------------- the world
    def _plan(self, index: int) -> Campaign:
        entry = self.world.listenloop_campaigns[index]
        rng = self.world.rng("listenloop-plan", index)
        created_at = self.world.at(entry.created_day + rng.uniform(0.3, 0.8))  # office hours-ish
        created_at = created_at.replace(microsecond=rng.randrange(1000) * 1000)
        strategy = rng.choices(STRATEGIES, weights=(50, 15, 10, 25))[0]
        cpm = Decimal(rng.choice(("12.5", "15.0", "18.0", "20.0", "25.0", "30.0", "35.0")))
        # CPC campaigns pay per click at their eCPC target (contract).
        click_price = Decimal(rng.choice(("1.5", "2.0", "2.25", "2.75", "3.5"))) if is_cpc(strategy) else Decimal("0.02")
        budget = Decimal(rng.choice((50, 75, 100, 150, 200, 250, 400)))
        # About one campaign in twelve never got a destination URL: the doc's
        # "worthy_of_dsp: false / No destination Url" case, and it never delivers.
        delivers = rng.random() >= 0.08
        slug = re.sub(r"[^a-z0-9]+", "-", entry.name.lower()).strip("-")
        delivery_start_day = entry.created_day + rng.randint(1, 3)
        target_draw = Decimal(rng.choice(("0.02", "0.5", "1.0", "1.5")))
        attrs: dict[str, Any] = dict(DEFAULTS)
        attrs.update(
            name=entry.name,
            bidding_strategy=strategy,
            user_defined_cpm=cpm,
            # The doc's max_bid is the max CPM bid: a CPC campaign caps its CPM at its CPM bid.
            max_bid=cpm if is_cpc(strategy) else Decimal("0.02"),
            ecpc_target=click_price if is_cpc(strategy) else target_draw,
            daily_budget=budget,
            bw_lifetime_budget=Decimal(rng.choice((5000, 10000, 20000))),
            pacing=rng.choice(PACINGS),
            destination_url=f"https://www.acme-outdoor.test/b2b/{slug}" if delivers else None,
            frequency_cap_impressions=rng.choice((10, 20, 30)),
            ctc_enabled=rng.random() < 0.3,
            start_date=self.world.day(delivery_start_day).isoformat() if delivers and rng.random() < 0.5 else None,
            targeting_strategy={"geo": True, "industries": rng.random() < 0.8, "job_titles": rng.random() < 0.7},
        )
        del attrs["user_defined_status"]  # status lives in the pause spans
        # CPM campaigns spend most of their budget; CPC ones are priced by the click.
        ctr = rng.uniform(0.0012, 0.0055)
        pace = rng.uniform(0.55, 0.95)
        if is_cpc(strategy):
            daily_impressions = float(budget / click_price) * pace / ctr
        else:
            daily_impressions = float(budget * 1000 / cpm) * pace
        campaign = Campaign(
            id=int(entry.id),
            index=index,
            created_at=created_at,
            attrs=attrs,
            delivers=delivers,
            delivery_start=self.world.at(delivery_start_day) if delivers else None,
            daily_impressions=daily_impressions,
            ctr=ctr,
            views_per_click=rng.uniform(0.6, 0.9),
            personalization_share=rng.uniform(0.2, 0.5),
            conversion_share=rng.uniform(0.02, 0.08),
            accounts_count=rng.randint(150, 2500) if delivers else None,
            day_parting_ids=[index * 7 + k + 1 for k in range(7)],
        )
        # A few campaigns get paused or archived by their owner at some point, some
        # already in the past, some still to come (their counters stop that day).
        if delivers and rng.random() < 0.15:
            since = self.world.at(delivery_start_day + rng.uniform(5, HISTORY_DAYS + 15 - entry.created_day))
            campaign.pauses.append(Pause(rng.choice(("paused", "paused", "archived")), since.replace(microsecond=0)))
        return campaign

    def daily(self, index: int, day: int) -> DailyFigures:
        """A delivering campaign's full-day figures: a pure function of (campaign, day)."""
        key = (index, day)
        if key not in self._daily:
            campaign = self.campaigns[int(self.world.listenloop_campaigns[index].id)]
            rng = self.world.rng("listenloop-day", index, day)
            weekday = self.world.day(day).weekday()  # B2B: weekends are quiet
            level = campaign.daily_impressions * (0.35 if weekday >= 5 else 1.0) * rng.uniform(0.8, 1.15)
            impressions = int(level)
            clicks = min(impressions, int(impressions * campaign.ctr * rng.uniform(0.7, 1.3)))
            views = int(clicks * campaign.views_per_click + rng.randint(0, 3))
            personalized = int(views * campaign.personalization_share)
            converted = int(views * campaign.conversion_share * rng.uniform(0.5, 1.5))
            self._daily[key] = (impressions, clicks, views, personalized, converted)
        return self._daily[key]

    def _accumulated(self, campaign: Campaign, until: datetime) -> DailyFigures:
        """Figures from delivery start to ``until``; the last day counts its whole hours."""
        if not campaign.delivers or campaign.delivery_start is None or campaign.index is None:
            return ZERO
        if until <= campaign.delivery_start:
            return ZERO
        first = self.world.day_offset(campaign.delivery_start)
        last = self.world.day_offset(until)
        totals = [0, 0, 0, 0, 0]
        for day in range(first, last):
            for k, value in enumerate(self.daily(campaign.index, day)):
                totals[k] += value
        hours = int((until - self.world.at(last)).total_seconds() // 3600)
        if hours:
            for k, value in enumerate(self.daily(campaign.index, last)):
                totals[k] += value * hours // 24
        return (totals[0], totals[1], totals[2], totals[3], totals[4])

    def _paused_spans(self, campaign: Campaign, now: datetime) -> list[tuple[datetime, datetime]]:
        """Merged paused/archived spans, clipped to ``now``."""
        spans = sorted((p.since, min(p.until or now, now)) for p in campaign.pauses if p.since < now)
        merged: list[tuple[datetime, datetime]] = []
        for since, until in spans:
            if merged and since <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], until))
            else:
                merged.append((since, until))
        return merged

    def counters(self, campaign: Campaign, now: datetime) -> DailyFigures | None:
        """Lifetime counters at ``now``; None before the first delivery (doc shows nulls)."""
        if not campaign.delivers or campaign.delivery_start is None or now <= campaign.delivery_start:
            return None
        totals = list(self._accumulated(campaign, now))
        for since, until in self._paused_spans(campaign, now):
            later, earlier = self._accumulated(campaign, until), self._accumulated(campaign, since)
            for k in range(5):
                totals[k] -= later[k] - earlier[k]
        return (totals[0], totals[1], totals[2], totals[3], totals[4])

    def status(self, campaign: Campaign, now: datetime) -> tuple[str, Pause | None]:
        current = [p for p in campaign.pauses if p.since <= now and (p.until is None or p.until > now)]
        if current:
            latest = max(current, key=lambda p: p.since)
            return latest.status, latest
        return "active", None

    def updated_at(self, campaign: Campaign, now: datetime) -> datetime:
        """Latest of: creation, API edit, status change, last hourly counter refresh."""
        moments = [campaign.created_at]
        if campaign.edited_at:
            moments.append(campaign.edited_at)
        for pause in campaign.pauses:
            moments += [m for m in (pause.since, pause.until) if m is not None and m <= now]
        if campaign.delivers and campaign.delivery_start is not None and now > campaign.delivery_start:
            # Counters move every hour while delivering; they stopped when it was paused.
            status, pause = self.status(campaign, now)
            end = pause.since if pause else now
            if end > campaign.delivery_start:
                hours = int((end - campaign.delivery_start).total_seconds() // 3600)
                moments.append(campaign.delivery_start + timedelta(hours=hours))
        return max(moments)

    # ------------------------------------------------------------------ reading
    def visible(self, now: datetime) -> list[Campaign]:
        return [c for _, c in sorted(self.campaigns.items()) if c.created_at <= now]

    def get(self, campaign_id: int, now: datetime) -> Campaign | None:
        campaign = self.campaigns.get(campaign_id)
        return campaign if campaign is not None and campaign.created_at <= now else None

    def render(self, campaign: Campaign, now: datetime, organization_campaigns: list[int]) -> dict[str, Any]:
        """The campaign object, field for field as the doc's create/edit responses."""
        a = campaign.attrs
        counters = self.counters(campaign, now)
        status, pause = self.status(campaign, now)
        stopped = [p.since for p in campaign.pauses if p.since <= now]
        impressions, clicks, views, personalized, converted = counters if counters else (None,) * 5
        accounts_with_impression = None
        if counters is not None and campaign.accounts_count:
            # Distinct accounts reached: saturates towards the targetable accounts.
            reach = 1 - math.exp(-counters[0] / (campaign.accounts_count * 1000))
            accounts_with_impression = int(campaign.accounts_count * reach)
        worthy = a["destination_url"] is not None
        return {
            "id": campaign.id,
            "name": a["name"],
            "organization_id": ORGANIZATION_ID,
            "user_defined_status": status,
            "archived_at": timestamp(pause.since) if pause and pause.status == "archived" else None,
            "worthy_of_dsp": worthy,
            "worthy_of_dsp_description": "" if worthy else "No destination Url",
            "destination_url": a["destination_url"],
            "accounts_count": campaign.accounts_count if counters is not None else None,
            "accounts_with_impression_count": accounts_with_impression,
            "last_user_stopped_at": timestamp(max(stopped)) if stopped else None,
            "start_date": a["start_date"],
            "end_date": a["end_date"],
            "daily_budget": money(a["daily_budget"]),
            "bw_lifetime_budget": money(a["bw_lifetime_budget"]),
            "user_defined_aggressiveness": a["user_defined_aggressiveness"],
            "user_defined_cpm": money(a["user_defined_cpm"]),
            "created_at": timestamp(campaign.created_at),
            "updated_at": timestamp(self.updated_at(campaign, now)),
            "frequency_cap_impressions": a["frequency_cap_impressions"],
            "frequency_cap_duration": a["frequency_cap_duration"],
            "billing_type": "monthly_recurring",
            "worthy_of_wpe": False,
            "worthy_of_wpe_description": None,
            "wizard_type": None,
            "ctc_enabled": a["ctc_enabled"],
            "targeting_strategy": dict(a["targeting_strategy"]),
            "bidding_strategy": a["bidding_strategy"],
            "pacing": a["pacing"],
            "ecpc_target": money(a["ecpc_target"]),
            "max_bid": money(a["max_bid"]),
            "clicks_count": clicks,
            "impressions_count": impressions,
            "turned_on_accounts_count": campaign.accounts_count or 0,
            "ctr": round(clicks / impressions, 6) if impressions else None,
            "page_views_count": views,
            "personalization_c_page_views_count": personalized,
            "conversion_c_page_views_count": converted,
            "conversion_rate": round(converted / views, 6) if views else None,
            "salesforce_lists": [],
            "organization": {"id": ORGANIZATION_ID, "campaigns": organization_campaigns},
            "job_titles": [],
            "personalization_criteria": [],
            "conversion_criteria": [],
            "inventories": [],
            "geo_optimizations": [],
            "day_partings": [
                {"id": pid, "day": day, "from_hour": 4, "to_hour": 20}
                for pid, day in zip(campaign.day_parting_ids, WEEKDAYS)
            ],
            "device_types": [],
            "carriers": [],
            "targetable_accounts_count": campaign.accounts_count or 0,
        }

    # ------------------------------------------------------------------ writing
    def create(self, attrs: dict[str, Any], now: datetime) -> Campaign:
        merged = dict(DEFAULTS)
        merged.update(attrs)
        campaign = Campaign(
            id=self._next_id,
            index=None,
            created_at=now,
            attrs=merged,
            day_parting_ids=list(range(self._next_day_parting_id, self._next_day_parting_id + 7)),
        )
        self._next_id += 1
        self._next_day_parting_id += 7
        self._apply_status(campaign, merged.pop("user_defined_status"), now)  # status lives in pause spans
        self.campaigns[campaign.id] = campaign
        return campaign

    def edit(self, campaign: Campaign, attrs: dict[str, Any], now: datetime) -> Campaign:
        status = attrs.pop("user_defined_status", None)
        campaign.attrs.update(attrs)
        if status is not None:
            self._apply_status(campaign, status, now)
        campaign.edited_at = now
        return campaign

    def _apply_status(self, campaign: Campaign, status: str, now: datetime) -> None:
        """Pausing/archiving opens a span (counters stop); "active" closes open spans."""
        current, _ = self.status(campaign, now)
        if status == current:
            return
        for pause in campaign.pauses:
            if pause.since <= now and (pause.until is None or pause.until > now):
                pause.until = now
        if status != "active":
            campaign.pauses.append(Pause(status, now))

    # -------------------------------------------------------------------- truth
    def truth(self, now: datetime) -> dict[str, Any]:
        sums = [0, 0, 0, 0, 0]
        spend = Decimal(0)
        campaigns = self.visible(now)
        for campaign in campaigns:
            counters = self.counters(campaign, now) or ZERO
            for k in range(5):
                sums[k] += counters[k]
            a = campaign.attrs
            spend += estimated_spend(a["bidding_strategy"], a["user_defined_cpm"], a["ecpc_target"], counters[0], counters[1])
        impressions, clicks, views, _, converted = sums
        return {
            "campaigns": {
                "count": len(campaigns),
                "sum_impressions_count": impressions,
                "sum_clicks_count": clicks,
                "sum_page_views_count": views,
                "sum_conversion_c_page_views_count": converted,
                "estimated_spend": money(spend),
            }
        }
