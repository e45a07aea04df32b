"""InboxFirst emulator, driven through plain HTTP (see docs/sandbox/inboxfirst.md)."""

from __future__ import annotations

import base64
import re
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.conftest import sandbox_server_of

sandbox_server = sandbox_server_of("inboxfirst")

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
ENVELOPE = {"success", "data", "error_code", "error_message"}

# The doc's "Get campaign details" example, key for key.
DETAIL_KEYS = {
    "active_html_editor", "archived", "content_determined", "created_at", "id", "mailing_list_id", "name",
    "organization_id", "segmentation_criteria_id", "template", "updated_at", "mailing_list_name",
    "organization_name", "stat_summary", "content_stats", "automatic_winner_selection", "dispatch",
    "campaign_contents", "segmentation_criteria_name",
}
STAT_SUMMARY_KEYS = {
    "sent_text", "sent_html", "sent_multipart", "bounces_total", "bounces_unique", "bounces_unique_hard",
    "bounces_unique_soft", "bounces_unique_other", "bounces_unique_local", "bounces_unique_remote",
    "clicks_total", "clicks_unique", "clicks_unique_by_link", "opens_total", "opens_unique", "scomps_total",
    "scomps_unique", "scomps_status_updated", "unsubs_total", "unsubs_unique", "unsubs_status_updated",
    "bounces_status_updated", "total_messages", "total_success", "total_failure", "total_failure_toolong",
    "skips_error", "skips_request", "stat_id", "bounces_unique_by_code", "messages_sent", "messages_html",
    "messages_text", "accepted", "accepted_rate", "in_queue", "in_queue_rate", "max_unique_activities",
    "open_rate", "open_ratio", "unopened", "duplicate_opens", "duplicate_clicks", "click_rate",
    "click_to_open_rate", "unclicked", "bounced", "duplicate_bounces", "unbounced", "bounce_rate",
    "bounce_rate_hard", "bounce_rate_soft", "bounce_rate_other", "bounce_local_rate", "duplicate_scomps",
    "duplicate_unsubs", "unsub_rate",
}
FLOAT_KEYS = {k for k in STAT_SUMMARY_KEYS if "rate" in k or "ratio" in k}
DISPATCH_KEYS = {
    "autowinner_delay_amount", "autowinner_delay_unit", "autowinner_enabled", "autowinner_metric",
    "autowinner_percentage", "begins_at", "finished_at", "from_email", "from_name", "paused", "reply_to",
    "sender_email", "speed", "started_at", "state", "track_links", "track_opens", "url_domain_id",
    "virtual_mta_id", "state_description", "virtual_mta_name", "virtual_mta_type", "bounce_email_user_id",
    "bounce_email_domain_id", "bounce_email_email", "url_domain_domain", "seed_lists",
    "special_sending_rule_id", "special_sending_rule_name", "seed_list_id", "seed_list_name",
}
LIST_ITEM_KEYS = {
    "id", "content_html", "stats", "segmentation_criteria_id", "created_at", "organization_id",
    "mailing_list_name", "archived", "content_determined", "mailing_list_id", "content_subject",
    "active_html_editor", "email_format", "content_text", "updated_at", "organization_name", "name", "dispatch",
}


def auth(env: dict[str, str]) -> tuple[str, str]:
    return env["SOURCES__INBOXFIRST__USERNAME"], env["SOURCES__INBOXFIRST__API_KEY"]


# One keep-alive session for the whole file: walking every link page is hundreds of requests.
HTTP = requests.Session()
_ENV: dict[str, dict[str, str]] = {}


def env_of(sandbox) -> dict[str, str]:
    """The sandbox's environment; fixed for a server (reset and advance keep it)."""
    if sandbox.base_url not in _ENV:
        _ENV[sandbox.base_url] = sandbox.env()
    return _ENV[sandbox.base_url]


def get(sandbox, path: str, **params) -> requests.Response:
    env = env_of(sandbox)
    return HTTP.get(env["SOURCES__INBOXFIRST__BASE_URL"] + path, auth=auth(env), params=params, timeout=10)


def ok(response: requests.Response):
    assert response.status_code == 200, response.text
    body = response.json()
    assert ENVELOPE <= set(body)
    assert body["success"] is True and body["error_code"] is None and body["error_message"] is None
    return body["data"]


def assert_error(response: requests.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == ENVELOPE
    assert body["success"] is False and body["data"] is None
    assert isinstance(body["error_code"], str) and isinstance(body["error_message"], str)
    return body


def list_ids(sandbox) -> list[int]:
    return [int(i) for i in env_of(sandbox)["SOURCES__INBOXFIRST__MAILING_LIST_IDS"].split(",")]


def all_campaigns(sandbox) -> list[dict]:
    return [c for lid in list_ids(sandbox) for c in ok(get(sandbox, f"/ga/api/v2/mailing_lists/{lid}/campaigns"))]


def sent_campaigns(sandbox) -> list[dict]:
    return [c for c in all_campaigns(sandbox) if c["dispatch"]["started_at"] is not None]


def parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def walk_links(sandbox, campaign_id: int, per_page: int, **params) -> tuple[list[dict], int]:
    """Every link_stats row from page 0 to the last page; also the number of pages read."""
    rows: list[dict] = []
    page = 0
    while True:
        response = get(sandbox, f"/ga/api/v2/campaigns/{campaign_id}/link_stats", page=page, per_page=per_page, **params)
        body = response.json()
        data = ok(response)
        assert body["page"] == page and body["per_page"] == per_page
        assert data["all_unclicked_links_recorded"] is True
        rows.extend(data["links"])
        page += 1
        if page >= body["num_pages"]:
            assert len(rows) == body["num_records"]
            return rows, page


# ------------------------------------------------------------------------------ auth


def test_env_gives_basic_credentials_and_three_lists(sandbox):
    env = sandbox.env()
    assert env["SOURCES__INBOXFIRST__BASE_URL"].endswith("/inboxfirst")
    assert re.fullmatch(r"[0-9a-f]{40}", env["SOURCES__INBOXFIRST__API_KEY"])
    assert list_ids(sandbox) == [1, 2, 3]


def basic(raw: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(raw.encode()).decode()}


def test_auth_failures_are_401_envelopes(sandbox):
    env = sandbox.env()
    user, key = auth(env)
    cases = {
        "missing": {},
        "bearer": {"Authorization": f"Bearer {key}"},
        "malformed": {"Authorization": "Basic !!!not-base64"},
        "wrong key": basic(f"{user}:{'0' * 40}"),
        "wrong user": basic(f"2:{key}"),
        "no user part": basic(key),
    }
    for case, headers in cases.items():
        for path in ("/ga/api/v2/mailing_lists/1/campaigns", "/ga/api/v2/nothing/here"):  # auth before routing
            response = HTTP.get(env["SOURCES__INBOXFIRST__BASE_URL"] + path, headers=headers, timeout=10)
            assert_error(response, 401)
            assert response.headers["WWW-Authenticate"].startswith("Basic"), case
    ok(HTTP.get(env["SOURCES__INBOXFIRST__BASE_URL"] + "/ga/api/v2/mailing_lists/1/campaigns", headers=basic(f"{user}:{key}"), timeout=10))


def test_unknown_ids_and_routes_answer_the_envelope(sandbox):
    assert_error(get(sandbox, "/ga/api/v2/mailing_lists/99/campaigns"), 404)
    assert_error(get(sandbox, "/ga/api/v2/mailing_lists/abc/campaigns"), 404)
    assert_error(get(sandbox, "/ga/api/v2/campaigns/999999"), 404)
    assert_error(get(sandbox, "/ga/api/v2/campaigns/nope"), 404)
    assert_error(get(sandbox, "/ga/api/v2/campaigns/by_stat/1"), 404)
    assert_error(get(sandbox, "/ga/api/v2/campaigns/999999/link_stats"), 404)
    assert_error(get(sandbox, "/ga/api/v2/no/such/route"), 404)
    env = sandbox.env()
    response = requests.post(env["SOURCES__INBOXFIRST__BASE_URL"] + "/ga/api/v2/campaigns/4", auth=auth(env), timeout=10)
    assert_error(response, 405)


# ----------------------------------------------------------------------------- lists


def test_campaign_lists_match_truth_and_the_doc_shape(sandbox):
    truth = sandbox.truth("inboxfirst")["inboxfirst"]
    now = parse(sandbox.clock()["now"].replace("+00:00", "Z"))
    seen = 0
    for lid in list_ids(sandbox):
        rows = ok(get(sandbox, f"/ga/api/v2/mailing_lists/{lid}/campaigns"))
        assert len(rows) == truth["campaigns"]["count_by_mailing_list"][str(lid)]
        seen += len(rows)
        assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)
        for row in rows:
            assert set(row) == LIST_ITEM_KEYS
            assert row["mailing_list_id"] == lid and row["stats"] is None
            assert TIMESTAMP.match(row["created_at"]) and TIMESTAMP.match(row["updated_at"])
            dispatch = row["dispatch"]
            assert set(dispatch) == {"state", "state_description", "paused", "begins_at", "started_at", "finished_at"}
            if dispatch["started_at"] is None:
                assert dispatch["state"] == "idle"
            else:
                assert TIMESTAMP.match(dispatch["started_at"]) and parse(dispatch["started_at"]) <= now
                assert dispatch["state"] in ("sending", "finished")
    assert seen == truth["campaigns"]["count"]
    assert 40 <= truth["campaigns"]["count_sent"] <= 70  # ~2 sends/week/list over 60 days


def test_started_at_filters_are_inclusive_and_drop_drafts(sandbox):
    rows = ok(get(sandbox, "/ga/api/v2/mailing_lists/1/campaigns"))
    sent = [r for r in rows if r["dispatch"]["started_at"]]
    assert len(sent) < len(rows)  # the idle draft is listed without filters
    target = sent[len(sent) // 2]
    moment = target["dispatch"]["started_at"]
    exact = ok(get(sandbox, "/ga/api/v2/mailing_lists/1/campaigns", started_at__start=moment, started_at__end=moment))
    assert [r["id"] for r in exact] == [target["id"]]
    unix = int(parse(moment).timestamp())
    assert ok(get(sandbox, "/ga/api/v2/mailing_lists/1/campaigns", started_at__start=unix, started_at__end=unix)) == exact
    after = ok(get(sandbox, "/ga/api/v2/mailing_lists/1/campaigns", started_at__start=moment))
    assert [r["id"] for r in after] == [r["id"] for r in sent if r["dispatch"]["started_at"] >= moment]
    before = ok(get(sandbox, "/ga/api/v2/mailing_lists/1/campaigns", started_at__end=moment))
    assert len(before) + len(after) == len(sent) + 1
    assert all(r["dispatch"]["state"] != "idle" for r in before + after)
    assert_error(get(sandbox, "/ga/api/v2/mailing_lists/1/campaigns", started_at__start="yesterday"), 400)


# --------------------------------------------------------------------------- details


def test_campaign_details_shape_and_consistency(sandbox):
    campaigns = sent_campaigns(sandbox)
    split = None
    for row in campaigns[:12]:
        data = ok(get(sandbox, f"/ga/api/v2/campaigns/{row['id']}"))
        assert DETAIL_KEYS <= set(data)
        assert data["name"] == row["name"] and data["mailing_list_id"] == row["mailing_list_id"]
        summary = data["stat_summary"]
        assert set(summary) == STAT_SUMMARY_KEYS
        for key, value in summary.items():
            if key in FLOAT_KEYS:
                assert isinstance(value, float), key
            elif key != "bounces_unique_by_code":
                assert isinstance(value, int) and value >= 0, key
        assert 1000 <= summary["messages_sent"] and summary["clicks_unique"] <= summary["clicks_total"]
        assert summary["bounces_unique"] == summary["bounces_unique_hard"] + summary["bounces_unique_soft"] + summary["bounces_unique_other"]
        assert summary["bounces_unique"] == summary["bounces_unique_local"] + summary["bounces_unique_remote"]
        assert set(data["dispatch"]) == DISPATCH_KEYS
        assert TIMESTAMP.match(data["dispatch"]["started_at"])
        # Content stats add up to the campaign's and carry stat_slice_id instead of stat_id.
        for key in ("messages_sent", "opens_total", "clicks_total", "unsubs_unique", "bounces_total"):
            assert sum(c["stat_summary"][key] for c in data["content_stats"]) == summary[key]
        for c in data["content_stats"]:
            assert set(c["stat_summary"]) == STAT_SUMMARY_KEYS - {"stat_id"} | {"stat_slice_id"}
        if len(data["content_stats"]) > 1:
            split = data
        else:
            assert data["automatic_winner_selection"] is None
        by_stat = ok(get(sandbox, f"/ga/api/v2/campaigns/by_stat/{summary['stat_id']}"))
        assert by_stat == data
    assert split is not None, "some campaigns are split tests"
    aws = split["automatic_winner_selection"]
    assert aws["state"] == "finished" and sum(s["content"]["is_winner"] for s in aws["snapshots"]) == 1
    with_sendid = ok(get(sandbox, f"/ga/api/v2/campaigns/{campaigns[0]['id']}", include_engine_sendid=1))
    assert isinstance(with_sendid["engine_sendid"], str)


def test_draft_details_and_links_are_empty(sandbox):
    draft = next(c for c in all_campaigns(sandbox) if c["dispatch"]["state"] == "idle")
    data = ok(get(sandbox, f"/ga/api/v2/campaigns/{draft['id']}"))
    assert data["stats"] is None and "stat_summary" not in data
    assert data["dispatch"]["started_at"] is None and data["dispatch"]["finished_at"] is None
    response = get(sandbox, f"/ga/api/v2/campaigns/{draft['id']}/link_stats")
    assert ok(response)["links"] == [] and response.json()["num_records"] == 0


# ------------------------------------------------------------------------ link stats


@pytest.mark.parametrize("per_page", [100, 500])
def test_link_stats_walked_to_the_end_match_truth(sandbox, per_page):
    truth = sandbox.truth("inboxfirst")["inboxfirst"]["link_stats"]
    count = clicks = unique = by_link = 0
    most_pages = 0
    for row in sent_campaigns(sandbox):
        links, pages = walk_links(sandbox, row["id"], per_page)
        most_pages = max(most_pages, pages)
        keys = [(link["url"].lower(), link["link_id"]) for link in links]
        assert keys == sorted(keys)  # doc: case-insensitive url, then link_id
        assert len({link["link_id"] for link in links}) == len(links)
        for link in links:
            assert set(link) == {"clicks_total", "clicks_unique", "clicks_unique_by_link", "link_id", "url"}
            assert link["clicks_unique"] <= link["clicks_unique_by_link"] <= link["clicks_total"]
        count += len(links)
        clicks += sum(link["clicks_total"] for link in links)
        unique += sum(link["clicks_unique"] for link in links)
        by_link += sum(link["clicks_unique_by_link"] for link in links)
    assert (count, clicks, unique, by_link) == (
        truth["count"], truth["sum_clicks_total"], truth["sum_clicks_unique"], truth["sum_clicks_unique_by_link"]
    )
    assert most_pages >= (2 if per_page == 500 else 6)
    assert sandbox.truth("inboxfirst")["inboxfirst"]["campaigns"]["sum_clicks_total"] == clicks


def test_link_clicks_sum_to_the_campaign_stat_summary(sandbox):
    for row in sent_campaigns(sandbox)[-6:]:  # recent ones: still maturing
        summary = ok(get(sandbox, f"/ga/api/v2/campaigns/{row['id']}"))["stat_summary"]
        links, _ = walk_links(sandbox, row["id"], 500)
        for key in ("clicks_total", "clicks_unique", "clicks_unique_by_link"):
            assert sum(link[key] for link in links) == summary[key]


def test_link_stats_parameters(sandbox):
    big = next(
        c for c in sent_campaigns(sandbox)
        if get(sandbox, f"/ga/api/v2/campaigns/{c['id']}/link_stats", per_page=1).json()["num_records"] > 500
    )
    path = f"/ga/api/v2/campaigns/{big['id']}/link_stats"
    default = get(sandbox, path).json()
    assert default["page"] == 0 and default["per_page"] == 100 and len(default["data"]["links"]) == 100
    assert default["num_records"] > 500
    capped = get(sandbox, path, per_page=1000, scope="all").json()
    assert capped["per_page"] == 500 and len(capped["data"]["links"]) == 500
    assert capped["num_pages"] == -(-capped["num_records"] // 500)
    beyond = get(sandbox, path, page=capped["num_pages"], per_page=500)
    assert ok(beyond)["links"] == []
    for bad in ({"per_page": 0}, {"page": -1}, {"page": "x"}, {"content_id": "x"}):
        assert_error(get(sandbox, path, **bad), 400)
    # url filter with wildcards, and content_id
    utm, _ = walk_links(sandbox, big["id"], 500, url="*utm_source=inboxfirst*")
    assert utm and all("utm_source=inboxfirst" in link["url"] for link in utm)
    assert len(utm) < default["num_records"]
    detail = ok(get(sandbox, f"/ga/api/v2/campaigns/{big['id']}"))
    exact = ok(get(sandbox, path, url=utm[0]["url"]))["links"]
    assert [link["link_id"] for link in exact] == [utm[0]["link_id"]]
    content_id = detail["content_stats"][0]["content"]["id"]
    only, _ = walk_links(sandbox, big["id"], 500, content_id=content_id)
    assert sum(link["clicks_total"] for link in only) == detail["content_stats"][0]["stat_summary"]["clicks_total"]


def test_link_urls_carry_the_email_campaigns_own_utm(sandbox):
    row = sent_campaigns(sandbox)[0]
    name_slug = re.sub(r"[^a-z0-9]+", "-", row["name"].lower()).strip("-")
    links, _ = walk_links(sandbox, row["id"], 500)
    tagged = [parse_qs(urlsplit(link["url"]).query) for link in links if "utm_campaign" in link["url"]]
    assert len(tagged) >= len(links) // 2
    assert all(q["utm_source"] == ["inboxfirst"] and q["utm_campaign"] == [name_slug] for q in tagged)


# --------------------------------------------------------------------------- advance


def test_advance_adds_sends_grows_recent_stats_and_freezes_old_ones(sandbox):
    now = parse(sandbox.clock()["now"].replace("+00:00", "Z"))
    before = {c["id"]: c for c in sent_campaigns(sandbox)}
    recent = max(before.values(), key=lambda c: c["dispatch"]["started_at"])
    assert now - parse(recent["dispatch"]["started_at"]) < timedelta(days=3)
    old = [c for c in before.values() if now - parse(c["dispatch"]["started_at"]) > timedelta(days=8)][-3:]
    old_details = {c["id"]: ok(get(sandbox, f"/ga/api/v2/campaigns/{c['id']}")) for c in old}
    old_links = {c["id"]: walk_links(sandbox, c["id"], 500)[0] for c in old}
    recent_before = ok(get(sandbox, f"/ga/api/v2/campaigns/{recent['id']}"))["stat_summary"]
    truth_before = sandbox.truth("inboxfirst")["inboxfirst"]

    sandbox.advance(3)
    new_now = parse(sandbox.clock()["now"].replace("+00:00", "Z"))

    after = {c["id"]: c for c in sent_campaigns(sandbox)}
    new = set(after) - set(before)
    assert new and set(before) <= set(after)
    for cid in new:
        started = parse(after[cid]["dispatch"]["started_at"])
        assert now < started <= new_now and cid > max(before)
    recent_after = ok(get(sandbox, f"/ga/api/v2/campaigns/{recent['id']}"))["stat_summary"]
    for key in ("opens_total", "opens_unique", "clicks_total", "unsubs_total"):
        assert recent_after[key] >= recent_before[key]
    assert recent_after["opens_total"] > recent_before["opens_total"]
    assert recent_after["clicks_total"] > recent_before["clicks_total"]
    for c in old:  # final after 7 days: not a byte changes
        assert ok(get(sandbox, f"/ga/api/v2/campaigns/{c['id']}")) == old_details[c["id"]]
        assert walk_links(sandbox, c["id"], 500)[0] == old_links[c["id"]]
    truth_after = sandbox.truth("inboxfirst")["inboxfirst"]
    assert truth_after["campaigns"]["count"] == truth_before["campaigns"]["count"] + len(new)
    for key, value in truth_before["campaigns"].items():
        if key.startswith("sum_"):
            assert truth_after["campaigns"][key] >= value, key


def test_advance_in_steps_equals_one_jump_and_reset_is_deterministic(sandbox):
    first = get(sandbox, "/ga/api/v2/mailing_lists/2/campaigns").content
    last_id = ok(get(sandbox, "/ga/api/v2/mailing_lists/2/campaigns"))[-1]["id"]
    detail = get(sandbox, f"/ga/api/v2/campaigns/{last_id}").content
    sandbox.advance(1)
    sandbox.advance(1)
    stepped = (sandbox.truth("inboxfirst"), get(sandbox, f"/ga/api/v2/campaigns/{last_id}").content)
    sandbox.reset()
    assert get(sandbox, "/ga/api/v2/mailing_lists/2/campaigns").content == first
    assert get(sandbox, f"/ga/api/v2/campaigns/{last_id}").content == detail
    sandbox.advance(2)
    assert (sandbox.truth("inboxfirst"), get(sandbox, f"/ga/api/v2/campaigns/{last_id}").content) == stepped


# ---------------------------------------------------------------------------- faults


def test_injected_faults_are_seen(sandbox):
    sandbox.add_fault("truncate", api="inboxfirst", count=1)
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError, ValueError)):
        get(sandbox, "/ga/api/v2/mailing_lists/1/campaigns").json()
    ok(get(sandbox, "/ga/api/v2/mailing_lists/1/campaigns"))  # count=1: the next one is whole
    sandbox.add_fault("429", api="inboxfirst", count=1, retry_after=3)
    limited = get(sandbox, "/ga/api/v2/campaigns/4")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "3"
    log = sandbox.requests("inboxfirst")
    assert [e["fault"] for e in log if e["fault"]] == ["truncate", "429"]
    assert all(e["headers"].get("authorization") == "***" for e in log)


# ------------------------------------------------------------------------ doc shapes


@pytest.mark.parametrize("sandbox_mode", ["doc_shapes"])
def test_doc_shapes_answer_like_the_doc_examples(sandbox, sandbox_mode):
    """The list as the doc's example ({"error_message": null, "data": [...]}, no
    success), null optional fields, and stat_summary null on every sent campaign
    whose id is a multiple of 10 (truth counts no figures for those)."""
    truth = sandbox.truth("inboxfirst")["inboxfirst"]["campaigns"]
    sent = []
    for lid in list_ids(sandbox):
        response = get(sandbox, f"/ga/api/v2/mailing_lists/{lid}/campaigns", started_at__start="2000-01-01T00:00:00Z")
        body = response.json()
        assert response.status_code == 200 and set(body) == {"error_message", "data"} and body["error_message"] is None
        assert all(set(r) == LIST_ITEM_KEYS and r["segmentation_criteria_id"] is None for r in body["data"])
        sent += body["data"]
    assert len(sent) == truth["count_sent"]
    sums = {"messages_sent": 0, "clicks_total": 0}
    nulls = 0
    for row in sent:
        data = ok(get(sandbox, f"/ga/api/v2/campaigns/{row['id']}"))  # details keep the full envelope
        if row["id"] % 10 == 0:
            nulls += 1
            assert data["stat_summary"] is None and all(c["stat_summary"] is None for c in data["content_stats"])
        else:
            for key in sums:
                sums[key] += data["stat_summary"][key]
        dispatch = data["dispatch"]
        assert dispatch["reply_to"] is None and dispatch["sender_email"] is None
        if not dispatch["autowinner_enabled"]:
            assert dispatch["autowinner_percentage"] is None and dispatch["autowinner_metric"] is None
    assert nulls == truth["count_stat_summary_null"] > 0
    assert sums == {key: truth[f"sum_{key}"] for key in sums}
    links = get(sandbox, f"/ga/api/v2/campaigns/{sent[0]['id']}/link_stats")
    assert set(links.json()) == ENVELOPE | {"page", "per_page", "num_records", "num_pages"}
