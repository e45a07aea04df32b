"""Retreaver's HTTP surface: two routers (api.retreaver.com and canary.retreaver.com)
that parse requests, ask the store and shape responses like the vendor doc's
examples. Doc references are to /work/shared/api-docs/retreaver.txt sections.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from sandbox.core import HTTPError, JSONBytes, Request, Response, Router, json_opt, json_str
from sandbox.retreaver.models import (
    _CITIES,
    _WEBHOOKS,
    API_KEY,
    COMPANY_ID,
    CallFilter,
    RetreaverStore,
    day_bounds_ms,
    fmt_offset,
    fmt_z,
    fmt_zms,
    money,
    money_str,
    ms_of,
)

PER_PAGE = 25  # "returns 25 results per page" (doc: Paginated)
RECENT_CALLS = 5_000  # rendered calls kept (RecentCalls): a few pages of 100, ~12 MB of v2 text
MAX_PER_PAGE = 100  # contract: per_page accepted up to 100
REPORT_FACETS = ("publisher", "buyer", "campaign", "number", "daily", "tag_value")

# Error texts from the doc's "Errors" table; the body shape is a sandbox choice (the doc shows none).
_ERRORS = {
    400: "Bad Request -- Your request was unintelligible. Check your formatting.",
    401: "Unauthorized -- Your API key is wrong or missing.",
    403: "Forbidden -- You didn't pass in your Company ID or you're using the wrong API key.",
    404: "Not Found -- It actually, really doesn't exist.",
    406: "Not Acceptable -- You requested a format that isn't JSON, or, sigh, XML.",
}


def fail(status: int, detail: str | None = None) -> HTTPError:
    body: dict[str, Any] = {"error": _ERRORS[status]}
    if detail:
        body["message"] = detail
    return HTTPError(status, body)


# ------------------------------------------------------------------- request helpers


def authenticate(request: Request) -> None:
    """Doc "Authentication" + "Errors": key missing/wrong -> 401; a company the key
    cannot access -> 403. company_id may be omitted: the key has one company."""
    if request.arg("api_key") != API_KEY:
        raise fail(401)
    company = request.arg("company_id")
    if company is not None and company != str(COMPANY_ID):
        raise fail(403)


def split_format(ref: str) -> str:
    """``abc.json`` -> ``abc``. JSON only: the sandbox does not emulate XML (406)."""
    stem, dot, ext = ref.rpartition(".")
    if not dot or ext != "json":
        raise fail(406, "the sandbox serves the .json format only")
    return stem


def paginate(request: Request, total: int, link: bool = True) -> tuple[int, int, dict[str, str]]:
    """page/per_page -> (offset, limit, Link header). rel first/prev/last/next as the
    api-pagination style the doc's example shows (last + next on page 1). No header
    when ``link`` is false (doc-shaped v2 calls: the doc shows Link for v1 only)."""
    page = request.int_arg("page", 1, minimum=1)
    per_page = request.int_arg("per_page", PER_PAGE, minimum=1, maximum=MAX_PER_PAGE)
    last = max(1, -(-total // per_page))
    links = []
    if page > 1:
        links.append(f'<{request.url_with(page=1)}>; rel="first"')
        links.append(f'<{request.url_with(page=min(page - 1, last))}>; rel="prev"')
    if page < last:
        links.append(f'<{request.url_with(page=last)}>; rel="last"')
        links.append(f'<{request.url_with(page=page + 1)}>; rel="next"')
    headers = {"Link": ", ".join(links)} if links and link else {}
    return (page - 1) * per_page, per_page, headers


def parse_timestamp(request: Request, name: str) -> int | None:
    raw = request.arg(name)
    if raw is None or raw == "":
        return None
    # The doc's own curl examples put a raw "+00:00" in the URL, which arrives as a
    # space: read it back as "+" (sandbox leniency).
    text = raw.strip()
    if len(text) > 6 and text[-6] == " " and text[-3] == ":":
        text = text[:-6] + "+" + text[-5:]
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise fail(400, f"{name} must be an RFC 3339 timestamp like 2016-01-01T00:00:00+00:00") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return ms_of(moment)


# ------------------------------------------------------------------------ rendering


class CallRenderer:
    """The JSON text of calls (v1 and v2), written directly: byte for byte what
    ``Response.encode`` writes for the objects this module used to build (a
    page is a hundred 70-key objects; building and encoding them was most of a
    page's time).

    What never changes for a store (campaigns, affiliates, targets, numbers, the
    doc-shapes switch) is encoded once; the per-call detail ("cosmetic" fields)
    is re-derived from ``world.rng("retreaver-call-detail", uuid)`` drawing the
    very same numbers in the same order as before (``Random.randint``,
    ``choice``... inlined as ``getrandbits`` rejection sampling, which is what
    they do). Field order, types and values are the vendor doc's v2 example's.
    """

    def __init__(self, store: RetreaverStore) -> None:
        self.store = store
        self.world = store.world
        self._local = threading.local()  # one generator per server thread
        doc = store.world.doc_shapes
        affiliates = store.affiliates
        self._campaigns = [
            (f'"cid":{json_str(c.cid)}', f'"system_campaign_id":{c.id}', f'"campaign_id":{c.id},"campaign_name":{json_str(c.name)}')
            for c in store.campaigns
        ]
        self._numbers = []
        for n in store.numbers:
            a = affiliates[n.affiliate] if n.affiliate is not None else None
            self._numbers.append(
                (
                    f'"afid":{json_opt(a.afid if a else None)},"sid":{json_opt(n.sid)}',
                    json_str(n.number),
                    f'"system_affiliate_id":{a.id if a and not doc else "null"}',
                    f'"number_id":{n.id}',
                    json_opt(f"{a.first_name} {a.last_name}" if a else None),
                )
            )
        # (number, id, tid, name, str(id)) of each target, as JSON text.
        self._targets = [(json_str(t.number), str(t.id), json_opt(t.tid), json_str(t.name), json_str(str(t.id))) for t in store.targets]
        # (state, city, zip, country, CITY) as JSON text, and the geo tag's tail.
        self._cities = []
        for state, city, zip_code, country in _CITIES:
            cl = country.lower()
            geo_tail = f",{cl},{cl}-{zip_code or '00000'},{cl}-{state.lower()}"
            self._cities.append((json_str(state), json_str(city), json_opt(zip_code), json_str(country), json_str(city.upper()), geo_tail))
        self._webhooks = [json_str(w) for w in _WEBHOOKS]

    def _rng(self, uuid: str) -> Any:
        rng = getattr(self._local, "rng", None)
        if rng is None:
            rng = self._local.rng = random.Random(0)
        return self.world.reseed(rng, "retreaver-call-detail", uuid)

    def v1(self, call: dict[str, Any]) -> str:
        """render v1: only the city comes from the detail generator (its first draw)."""
        rng = self._rng(call["uuid"])
        state, _, zip_code, country, city_upper, _ = self._cities[_below(rng.getrandbits, len(_CITIES))]
        number = self._numbers[call["number_idx"]]
        created = call["created_ms"]
        total = call["total_duration"]
        target_idx = call["target_idx"]
        uuid = json_str(call["uuid"])
        if target_idx is not None:
            dialed = self._targets[target_idx][0]
            forwarded = f'"{fmt_z(created + (total - call["dialed_duration"]) * 1000)}"'
            recording = json_str(f"https://recordings.sandbox.test/{call['uuid']}.mp3")
        else:
            dialed, forwarded, recording = number[1], "null", "null"
        created_z = fmt_z(created)
        return (
            f'{{"uuid":{uuid},"caller":{json_str(call["caller"])},"caller_zip":{zip_code},"caller_state":{state},'
            f'"caller_city":{city_upper},"caller_country":{country},"dialed_call_duration":{call["dialed_duration"]},'
            f'"total_duration":{total},"status":"finished","start_time":"{created_z}","forwarded_time":{forwarded},'
            f'"end_time":"{fmt_z(created + total * 1000)}",{self._campaigns[call["campaign_idx"]][0]},{number[0]},'
            f'"dialed_number":{dialed},"updated_at":"{fmt_z(call["updated_ms"])}","created_at":"{created_z}","recording_url":{recording}}}'
        )

    def v2(self, call: dict[str, Any]) -> str:
        """Every field of the doc's "V2 - Get recent Calls" example, same types: revenue and
        payout numbers (null until converted), charge_total/total_cost/profit_gross strings."""
        uuid = call["uuid"]
        rng = self._rng(uuid)
        bits = rng.getrandbits
        state, city, zip_code, country, _, geo_tail = self._cities[_below(bits, len(_CITIES))]
        total, dialed_s = call["total_duration"], call["dialed_duration"]
        ivr_hold = total - dialed_s
        ivr = _below(bits, ivr_hold + 1)
        created = call["created_ms"]
        target_idx = call["target_idx"]
        connected = target_idx is not None
        # %-formatting: twice as fast as f-string format specs here.
        request_id = _REQUEST_ID % (bits(32), bits(16), bits(16), bits(16), bits(48), bits(32), bits(16), bits(16), bits(16), bits(48))
        pixels = []
        span = max(201, total * 1000) - 199
        for order in range(1 + _below(bits, 4)):
            at = created + 200 + _below(bits, span)
            batch = _BATCH_UUID % (bits(32), bits(16), bits(12), bits(16), bits(48))
            fired = at - _below(bits, 151)
            webhook = self._webhooks[_below(bits, 4)] if order == 0 else self._webhooks[0]
            pixels.append(_PIXEL % (batch, fmt_zms(at), fmt_zms(fired), webhook))
        start_lead = 50 + _below(bits, 251)
        determine_lag = 50 + _below(bits, 351)
        repeat = "true" if rng.random() < 0.2 else "false"
        hung_up_by = _HUNG_UP_BY[_below(bits, 3)] if connected else '"caller"'
        time_to_call = 5 + _below(bits, 399_996)

        number = self._numbers[call["number_idx"]]
        campaign = self._campaigns[call["campaign_idx"]]
        converted = call["converted"]
        revenue_c = call["revenue_c"] if converted else None
        payout_c = call["payout_c"] if converted else None
        cost_c = call["cost_c"]
        net_c = (revenue_c or 0) - (payout_c or 0)
        determined_ms = call["converted_ms"] if converted else call["visible_ms"] - determine_lag
        tags = f'"geo":{json_str(call["caller"][2:5] + geo_tail)},"request_id":"{request_id}","status":"success"'
        if connected:
            target = self._targets[target_idx]
            tags += f',"attempt":"{request_id}","id":"{request_id}","system_target_id":{target[4]}'
            t_number, t_id, t_tid, t_name = target[0], target[1], target[2], target[3]
            forwarded = f'"{fmt_zms(created + ivr_hold * 1000)}"'
            recording = json_str(f"https://recordings.sandbox.test/{uuid}.mp3")
            target_group = '{"id":1639,"name":"Acme Call Center"}'
            target_repeat = repeat
        else:
            t_number, t_id, t_tid, t_name = number[1], "null", "null", "null"
            forwarded = recording = target_repeat = "null"
            target_group = "{}"
        for key in ("utm_source", "utm_campaign", "email"):
            value = call[key]
            if value is not None:
                tags += f',"{key}":{json_str(value)}'
        payable = "true" if converted and payout_c is not None and payout_c > 0 else "false"
        conv = "true" if converted else "false"
        charge = money_str(cost_c)
        return (
            f'{{"uuid":{json_str(uuid)},"caller":{json_str(call["caller"])},"caller_number_sent":null,"caller_zip":{zip_code},'
            f'"caller_state":{state},"caller_city":{city},"caller_country":{country},"dialed_call_duration":{dialed_s},'
            f'"total_duration":{total},"ivr_duration":{ivr},"hold_duration":{ivr_hold - ivr},"status":"finished",'
            f'"start_time":"{fmt_zms(created - start_lead)}","forwarded_time":{forwarded},"end_time":"{fmt_zms(created + total * 1000)}",'
            f'{campaign[0]},{number[0]},"dialed_number":{t_number},"revenue":{_money(revenue_c)},"payout":{_money(payout_c)},'
            f'"postback_value":null,"network_sale_timer_fired":null,"affiliate_sale_timer_fired":null,"target_sale_timer_fired":null,'
            f'"hung_up_by":{hung_up_by},"duplicate":false,"payable_duplicate":false,"receivable_duplicate":false,'
            f'"callpixels_target_id":{t_id},"system_target_id":{t_id},{campaign[1]},{number[2]},"fired_pixels_count":{len(pixels)},'
            f'"charge_total":"{charge}","keys_pressed":["1"],"repeat":{repeat},"affiliate_repeat":false,"target_repeat":{target_repeat},'
            f'"number_repeat":{repeat},"visitor_url":"https://www.acme-outdoor.test/lp","company_id":{COMPANY_ID},'
            f'"conversions_determined_at":"{fmt_zms(determined_ms)}","updated_at":"{fmt_zms(call["updated_ms"])}",'
            f'"created_at":"{fmt_zms(created)}","billable_minutes":{max(1, -(-total // 60))},"upstream_call_uuid":null,'
            f'"downstream_call_uuids":[],"target_group":{target_group},"recording_url":{recording},"number":{number[1]},'
            f'"converted":{conv},"payable":{payable},"receivable":{conv},"conversion_seconds":null,"tid":{t_tid},'
            f'"tags":{{{tags}}},"fired_pixels":[{",".join(pixels)}],"via":"inbound-dial","rescued":false,{campaign[2]},{number[3]},'
            f'"target_id":{t_id},"affiliate_name":{number[4]},"connected":{"true" if connected else "false"},'
            f'"profit_gross":"{money_str(net_c - cost_c)}","profit_net":{_money(net_c)},"target_name":{t_name},'
            f'"time_to_call_in_seconds":{time_to_call},"time_to_connect_in_seconds":{ivr_hold},"total_cost":"{charge}"}}'
        )


class RecentCalls:
    """The JSON text of recently rendered calls, first in first out.

    A call's text is a pure function of its store (fixed until a reset, which
    builds a new store, routers and this cache) and of its row, where only the
    conversion moves with the clock: (renderer, uuid, converted) is the whole
    key, and an advance needs no invalidation (a converted call is a new key).
    Holds the page read ahead for a walk, and what a client reads again.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._texts: dict[tuple[Any, ...], str] = {}
        # Insertion order apart: next(iter(dict)) after many deletions from the
        # front walks their tombstones (1.6 us an eviction instead of 0.2 here).
        self._order: deque[tuple[Any, ...]] = deque()

    def text(self, render: Callable[[dict[str, Any]], str], call: dict[str, Any]) -> str:
        key = (render, call["uuid"], call["converted"])
        text = self._texts.get(key)
        if text is None:
            text = self._texts[key] = render(call)
            self._order.append(key)
            if len(self._order) > self.capacity:
                del self._texts[self._order.popleft()]
        return text


_HUNG_UP_BY = ('"caller"', '"caller"', '"target"')
_REQUEST_ID = "%08x-%04x-%04x-%04x-%012x,%08x-%04x-%04x-%04x-%012x"
_BATCH_UUID = "%08x-%04x-4%03x-%04x-%012x"
_PIXEL = (
    '{"fired_pixel":{"url":"https://example.com","fire_order":0,"batch_uuid":"%s",'
    '"created_at":"%s","fired_at":"%s","status":"fired","webhook_name":%s}}'
)


def _below(bits: Callable[[int], int], n: int) -> int:
    """``Random._randbelow(n)``: what randint/randrange/choice draw with."""
    if n <= 0:
        raise ValueError("empty range")
    k = n.bit_length()
    r = bits(k)
    while r >= n:
        r = bits(k)
    return r


def _money(cents: int | None) -> str:
    """``money(cents)`` as JSON text."""
    return "null" if cents is None else repr(money(cents))  # json.dumps writes a float as repr()


def render_campaign(store: RetreaverStore, index: int) -> dict[str, Any]:
    c = store.campaigns[index]
    # Doc "Our IDs vs Customer IDs": "id" is the internal ID; the doc's campaign
    # examples show none, and neither does the doc-shaped mode.
    internal = {} if store.world.doc_shapes else {"id": c.id}
    return {
        "campaign": {
            **internal,
            "cid": c.cid,
            "name": c.name,
            "updated_at": fmt_z(c.updated_ms),
            "created_at": fmt_z(c.created_ms),
            "record_calls": True,
            "record_seconds": 3600,
            "dedupe_seconds": 86400,
            "affiliate_can_pull_number": False,
            "show_key": f"{c.id * 7919:032x}",
            "greeting": {"message": "Hi There! Press one to continue.", "voice_gender": "Female"},
            "timers": [
                {"timer": {"id": c.id * 2, "seconds": 0, "url": "https://track.sandbox.test/click?CID=[campaign_id]&AFID=[affiliate_id]&SID=[sub_id]"}},
                {"timer": {"id": c.id * 2 + 1, "seconds": 90, "url": "https://track.sandbox.test/pixel?CID=[campaign_id]&AFID=[affiliate_id]&SID=[sub_id]&MerchantReferenceID=[caller_id]-[called_number]-[call_duration]"}},
            ],
            "menu_options": [{"menu_option": {"id": c.id + 50, "option": "1", "target_cid": None, "target_number": store.targets[index % len(store.targets)].number}}],
        }
    }


def render_affiliate(store: RetreaverStore, index: int) -> dict[str, Any]:
    a = store.affiliates[index]
    internal = {} if store.world.doc_shapes else {"id": a.id}  # as campaigns
    return {
        "affiliate": {
            **internal,
            "afid": a.afid,
            "first_name": a.first_name,
            "last_name": a.last_name,
            "company_name": a.company_name,
            "updated_at": fmt_z(a.updated_ms),
            "created_at": fmt_z(a.created_ms),
        }
    }


def render_target(store: RetreaverStore, index: int) -> dict[str, Any]:
    t = store.targets[index]
    return {
        "target": {
            "id": t.id,
            "number": t.number,
            "sip_username": None,
            "sip_password": None,
            "cid_number_id": None,
            "obfuscate_cid": False,
            "created_at": fmt_offset(t.created_ms),
            "updated_at": fmt_offset(t.updated_ms),
            "object_key": t.object_key,
            "tid": t.tid,
            "priority": 1,
            "weight": 1,
            "timeout_seconds": 30,
            "timer_offset": 0,
            "send_digits": None,
            "concurrency_cap": None,
            "calls_in_progress": 0,
            "inband_signals": False,
            "time_zone": "Eastern Time (US & Canada)",
            "paused": False,
            "paused_at": None,
            "name": t.name,
        }
    }


def render_number(store: RetreaverStore, index: int) -> dict[str, Any]:
    n = store.numbers[index]
    campaign = store.campaigns[n.campaign]
    return {
        "number": {
            "id": n.id,
            "number": n.number,
            "toll_free": n.number.startswith("+1888"),
            "updated_at": fmt_z(n.updated_ms),
            "created_at": fmt_z(n.created_ms),
            "sid": n.sid,
            "afid": store.affiliates[n.affiliate].afid if n.affiliate is not None else None,
            "cid": campaign.cid,
            "uses_campaign_settings": True,
            "greeting": {"message": "Hi There! Press one to continue.", "voice_gender": "Female", "inherited": True},
            "timers": [
                {"id": campaign.id * 2, "seconds": 0, "url": "https://track.sandbox.test/click?CID=[campaign_id]&AFID=[affiliate_id]&SID=[sub_id]", "inherited": True},
            ],
            "menu_options": [
                {"menu_option": {"id": campaign.id + 50, "option": "1", "target_cid": None, "target_number": store.targets[n.campaign % len(store.targets)].number, "inherited": True}}
            ],
        }
    }


def render_company(store: RetreaverStore) -> dict[str, Any]:
    return {
        "company": {
            "id": COMPANY_ID,
            "name": "Acme Outdoor",
            "default_click_url": "https://track.sandbox.test/?a=[affiliate_id]&c=[campaign_id]&cp=js&s1=[sub_id]",
            "default_sale_url": "https://track.sandbox.test/p?o=[campaign_id]&t=[call_log_id]-[caller_id]-[called_number]-[call_duration]",
            "created_at": fmt_z(store.company_created_ms),
            "updated_at": fmt_z(store.company_created_ms + 3 * 86_400_000),
        }
    }


def report_row(facet_id: Any, facet_name: str, agg: dict[str, Any]) -> dict[str, Any]:
    """One row shaped like the doc's report example (floats; durations are averages in
    minutes, a sandbox reading of the example's 3.67 for 3 calls)."""
    n = agg["count"]
    revenue = round(agg["revenue_c"] / 100, 2)
    payout = round(agg["payout_c"] / 100, 2)
    cost = round(agg["cost_c"] / 100, 2)
    avg_total = agg["duration"] / n / 60
    avg_connected = agg["dialed"] / n / 60
    return {
        "id": facet_id,
        "facet_name": facet_name,
        "total_calls": n,
        "repeat_count": 0.0,
        "duplicate_count": 0.0,
        "unique_calls": float(n),
        "converted_count": float(agg["converted"]),
        "revenue": revenue,
        "payout": payout,
        "cost": cost,
        "total_duration": avg_total,
        "total_duration_percent": 0.0,
        "rescued_count": 0.0,
        "rescued_revenue": 0.0,
        "connected_duration": avg_connected,
        "connected_duration_percent": (avg_connected / avg_total * 100) if avg_total else 0.0,
        "in_progress_count": 0.0,
        "profit": round((agg["revenue_c"] - agg["payout_c"] - agg["cost_c"]) / 100, 2),
        "repeat_count_percent": 0,
        "duplicate_count_percent": 0,
        "converted_count_percent": agg["converted"] / n * 100,
        "rescued_count_percent": 0,
        "epc": round(agg["revenue_c"] / 100 / n, 4),
        "cpc": round(agg["cost_c"] / 100 / n, 4),
    }


# --------------------------------------------------------------------------- routes


def build_routers(store: RetreaverStore) -> tuple[Router, Router]:
    """(api.retreaver.com router, canary.retreaver.com router)."""
    api, canary = Router(), Router()

    def guarded(handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
        def run(request: Request) -> Response:
            authenticate(request)  # before anything else, even the format check
            return handler(request)

        return run

    def fmt_only(request: Request) -> None:
        split_format("x." + request.params["fmt"])

    def wrapped_list(count: int, render: Callable[[RetreaverStore, int], dict[str, Any]], request: Request, indexes: list[int] | None = None) -> Response:
        """A catalogue index: every object, 25 a page, ordered by internal id."""
        fmt_only(request)
        rows = indexes if indexes is not None else list(range(count))
        offset, limit, headers = paginate(request, len(rows))
        return Response(200, [render(store, i) for i in rows[offset : offset + limit]], headers)

    # ---- calls (v1 on api, v2 on canary)
    def call_filter(request: Request) -> CallFilter:
        def lookup(name: str, find: Callable[[str], int | None]) -> int | None:
            value = request.arg(name)
            if value is None or value == "":
                return None
            found = find(value)
            return -1 if found is None else found  # an unknown id matches no call

        return CallFilter(
            start_ms=parse_timestamp(request, "created_at_start"),
            end_ms=parse_timestamp(request, "created_at_end"),
            caller=request.arg("caller") or None,
            campaign=lookup("client_cid", store.campaign_index),
            affiliate=lookup("client_afid", store.affiliate_index),
            target=lookup("client_tid", store.target_index),
            sid=request.arg("sub_id") or None,
        )

    renderer = CallRenderer(store)
    recent = RecentCalls(RECENT_CALLS)

    def list_calls(render: Callable[[dict[str, Any]], str], v2: bool = False) -> Callable[[Request], Response]:
        def handler(request: Request) -> Response:
            fmt_only(request)
            sort_by = request.arg("sort_by") or "created_at"
            order = request.arg("order") or "desc"
            if sort_by not in ("created_at", "updated_at"):
                raise fail(400, "sort_by must be created_at or updated_at")
            if order not in ("asc", "desc"):
                raise fail(400, "order must be asc or desc")
            flt = call_filter(request)
            # Doc: "calls sorted by updated_at will forcefully be returned in desc order".
            descending = sort_by == "updated_at" or order == "desc"
            # Doc-shaped v2 pages carry no Link header (the doc shows it for v1 only).
            offset, limit, headers = paginate(request, store.count_calls(flt), link=not (v2 and store.world.doc_shapes))
            rows = store.list_calls(flt, sort_by, descending, offset, limit)
            # [{"call": {...}}, ...] as JSON text.
            body = '{"call":' + '},{"call":'.join([recent.text(render, row) for row in rows]) + "}" if rows else ""

            def read_ahead() -> None:
                # A full page: a walk asks for the next one once it has read this one.
                for row in store.list_calls(flt, sort_by, descending, offset + limit, limit):
                    recent.text(render, row)

            return Response(200, JSONBytes(f"[{body}]".encode()), headers, after=read_ahead if len(rows) == limit else None)

        return handler

    def get_call(render: Callable[[dict[str, Any]], str]) -> Callable[[Request], Response]:
        def handler(request: Request) -> Response:
            call = store.get_call(split_format(request.params["ref"]))
            if call is None:
                raise fail(404)
            return Response(200, JSONBytes(f'{{"call":{recent.text(render, call)}}}'.encode()))

        return handler

    # Member routes first: the router does not escape the "." of "/calls.{fmt}", which
    # would otherwise also match "/calls/<uuid>.json".
    api.add("GET", "/calls/{ref}", guarded(get_call(renderer.v1)))
    api.add("GET", "/calls.{fmt}", guarded(list_calls(renderer.v1)))
    canary.add("GET", "/api/v2/calls/{ref}", guarded(get_call(renderer.v2)))
    canary.add("GET", "/api/v2/calls.{fmt}", guarded(list_calls(renderer.v2, v2=True)))

    # ---- catalogue
    def one(render: Callable[[RetreaverStore, int], dict[str, Any]], find: Callable[[str], int | None]) -> Callable[[Request], Response]:
        def handler(request: Request) -> Response:
            index = find(split_format(request.params["ref"]))
            if index is None:
                raise fail(404)
            return Response(200, render(store, index))

        return handler

    def list_numbers(request: Request) -> Response:
        wanted = [
            i
            for i, n in enumerate(store.numbers)
            if (request.arg("cid") in (None, "", store.campaigns[n.campaign].cid))
            and (request.arg("afid") in (None, "", n.affiliate is not None and store.affiliates[n.affiliate].afid))
            and (request.arg("sid") in (None, "", n.sid))
        ]
        return wrapped_list(len(store.numbers), render_number, request, wanted)

    api.add("GET", "/campaigns/cid/{ref}", guarded(one(render_campaign, store.campaign_index)))
    api.add("GET", "/campaigns/{ref}", guarded(one(render_campaign, store.campaign_index_by_id)))
    api.add("GET", "/campaigns.{fmt}", guarded(lambda r: wrapped_list(len(store.campaigns), render_campaign, r)))
    api.add("GET", "/affiliates/afid/{ref}", guarded(one(render_affiliate, store.affiliate_index)))
    api.add("GET", "/affiliates/{ref}", guarded(one(render_affiliate, store.affiliate_index_by_id)))
    api.add("GET", "/affiliates.{fmt}", guarded(lambda r: wrapped_list(len(store.affiliates), render_affiliate, r)))
    api.add("GET", "/targets/tid/{ref}", guarded(one(render_target, store.target_index)))
    api.add("GET", "/targets/{ref}", guarded(one(render_target, store.target_index_by_id)))
    api.add("GET", "/targets.{fmt}", guarded(lambda r: wrapped_list(len(store.targets), render_target, r)))
    api.add("GET", "/numbers/{ref}", guarded(one(render_number, store.number_index_by_id)))
    api.add("GET", "/numbers.{fmt}", guarded(list_numbers))

    def company(request: Request) -> Response:
        fmt_only(request)
        return Response(200, render_company(store))

    api.add("GET", "/company.{fmt}", guarded(company))

    # ---- reports
    def reports(request: Request) -> Response:
        fmt_only(request)
        if request.arg("domain") != "calls":
            raise fail(400, "domain is mandatory and must be 'calls'")
        facet = request.arg("facet")
        if facet not in REPORT_FACETS:
            raise fail(400, f"facet is mandatory, one of {list(REPORT_FACETS)}")
        start, end = report_date(request, "created_at_start"), report_date(request, "created_at_end")
        if start >= end:
            raise fail(400, "created_at_start must be before created_at_end")
        if end >= _add_years(start, 2):
            raise fail(400, "created_at_start and created_at_end must be less than 2 years apart")
        rows = report_rows(facet, request.arg("tag_value_key"), *day_bounds_ms(start, end))
        page = request.int_arg("page", 1, minimum=1)
        per_page = request.int_arg("per_page", PER_PAGE, minimum=1)
        chunk = rows[(page - 1) * per_page : page * per_page]
        # Doc examples: count/count_total are CALLS (2 rows of 2 + 1 calls: 3 and 3),
        # read here as this page's calls and the whole report's calls.
        calls = lambda part: sum(r["total_calls"] for r in part)  # noqa: E731
        return Response(200, {"count": calls(chunk), "count_total": calls(rows), "data": chunk})

    def report_rows(facet: str, tag_key: str | None, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
        if facet == "tag_value":
            # Only indexed tags are reported (doc: "Not all tag values are indexed").
            if tag_key is None:
                return [report_row(k, k, agg) for k, agg in store.report_tag_keys(start_ms, end_ms)]
            if tag_key not in store.INDEXED_TAGS:
                return []
            return [report_row(agg["key"], agg["key"], agg) for agg in store.report("tag:" + tag_key, start_ms, end_ms)]
        out = []
        for agg in store.report(facet, start_ms, end_ms):
            key = agg["key"]
            if facet == "daily":
                day = store.world.day(key).isoformat()
                out.append(report_row(day, day, agg))
            elif facet == "campaign":
                c = store.campaigns[key]
                out.append(report_row(c.id, c.name, agg))
            elif facet == "publisher":
                a = store.affiliates[key]
                out.append(report_row(a.id, f"{a.first_name} {a.last_name}", agg))
            elif facet == "buyer":
                t = store.targets[key]
                out.append(report_row(t.id, t.name, agg))
            else:
                n = store.numbers[key]
                out.append(report_row(n.id, n.number, agg))
        return out

    api.add("GET", "/api/v1/reports.{fmt}", guarded(reports))
    return api, canary


def report_date(request: Request, name: str) -> date:
    raw = request.arg(name)
    if not raw:
        raise fail(400, f"{name} is mandatory (YYYY-MM-DD)")
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise fail(400, f"{name} must be a date, YYYY-MM-DD") from None


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)

