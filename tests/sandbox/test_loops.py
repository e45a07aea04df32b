"""The Loops emulator, driven over plain HTTP: find/create/update/delete/events as
the doc describes, auth, the documented 10 requests/second limit, advance and
determinism."""

from __future__ import annotations

import time
from collections import deque
from datetime import datetime

import pytest
import requests

from sandbox.loops.models import RateLimiter
from sandbox.world import World
from tests.conftest import TEST_NOW, TEST_SEED, sandbox_server_of

sandbox_server = sandbox_server_of("loops")

CONTACT_FIELDS = [
    "id", "email", "firstName", "lastName", "source", "subscribed", "userGroup", "userId", "createdAt",
    "utmCampaign", "utmSource",
]  # fmt: skip


class Client:
    """Stays under 10 requests/second itself (as the contract asks of a client)."""

    def __init__(self, sandbox, key: str | None = None):
        env = sandbox.env()
        self.base = env["SOURCES__LOOPS__BASE_URL"] + "/api/v1"
        self.key = env["SOURCES__LOOPS__API_KEY"] if key is None else key
        self.http = requests.Session()
        self._sent: deque[float] = deque()

    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        while len(self._sent) >= 10:
            wait = self._sent[0] + 1.05 - time.monotonic()
            if wait <= 0:
                self._sent.popleft()
            else:
                time.sleep(wait)
        self._sent.append(time.monotonic())
        headers = {"Authorization": f"Bearer {self.key}"}
        return self.http.request(method, self.base + path, headers=headers, timeout=10, **kwargs)

    def find(self, email: str) -> list[dict]:
        response = self.call("GET", "/contacts/find", params={"email": email})
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture
def client(sandbox) -> Client:
    return Client(sandbox)


def truth(sandbox) -> dict:
    return sandbox.truth("loops")["loops"]


def created(contact: dict) -> datetime:
    return datetime.fromisoformat(contact["createdAt"].replace("Z", "+00:00"))


def world_emails(scale: float = 1.0) -> list[str]:
    return World(seed=TEST_SEED, scale=scale, now=TEST_NOW).contact_emails


def test_find_returns_an_array_with_one_contact(client):
    email = next(e for e in world_emails()[:20] if client.find(e))
    found = client.find(email.upper())  # emails match case-insensitively
    assert len(found) == 1
    contact = found[0]
    assert list(contact) == CONTACT_FIELDS
    assert contact["email"] == email
    assert isinstance(contact["subscribed"], bool)
    assert contact["createdAt"].endswith("Z") and created(contact) <= TEST_NOW
    assert client.find("nobody@nowhere.test") == []  # doc: "you will receive an empty array"


@pytest.mark.parametrize("sandbox_mode", ["doc_shapes"])
def test_doc_shapes_contacts_carry_only_the_documented_fields(sandbox, client):
    found = [c for e in world_emails()[:20] for c in client.find(e)]
    assert found
    for contact in found:
        # The doc's Add/Update body fields (null when unset), then set extras only.
        assert list(contact)[:5] == ["email", "firstName", "lastName", "userGroup", "source"]
        assert not {"id", "subscribed", "createdAt"} & set(contact)
        assert all(v is not None for k, v in list(contact.items())[5:])
    assert any("userId" not in c for c in found) and any("utmCampaign" in c for c in found)


def test_find_validates_the_email_parameter(client):
    for params in ({}, {"email": ""}, {"email": "not-an-email"}, {"email": "two..dots@example.test"}):
        response = client.call("GET", "/contacts/find", params=params)
        assert response.status_code == 400
        assert response.json()["success"] is False


def test_every_contact_is_findable_and_counts_match_truth_then_advance_reveals_more(sandbox, client):
    # A smaller world keeps this under 5 s at 10 requests/second.
    sandbox.reset(seed=TEST_SEED, scale=0.01, now=TEST_NOW.isoformat())
    emails = world_emails(0.01)
    found = {e: client.find(e) for e in emails}
    visible = [c[0] for c in found.values() if c]
    assert truth(sandbox)["contacts"] == {"count": len(visible), "subscribed": sum(c["subscribed"] for c in visible)}
    missing = [e for e, c in found.items() if not c]
    assert 0 < len(missing) < len(emails) // 2  # some are created after "now"
    assert len({c["utmCampaign"] for c in visible if c["utmCampaign"]}) > 3

    sandbox.advance(10)  # contacts are created up to ten days after the start clock
    later = [client.find(e) for e in missing]
    assert all(len(c) == 1 for c in later)
    assert all(created(c[0]) > TEST_NOW for c in later)
    assert truth(sandbox)["contacts"]["count"] == len(emails)
    assert [client.find(e)[0] for e in emails[:5] if found[e]] == [found[e][0] for e in emails[:5] if found[e]]


def test_create_then_find_and_conflict(sandbox, client):
    before = truth(sandbox)["contacts"]
    body = {"email": "adam@loops.test", "firstName": "Adam", "lastName": "Kaczmarek", "favoriteColor": "blue",
            "userGroup": "Founders", "source": "Signup form Service"}  # fmt: skip
    created = client.call("POST", "/contacts/create", json=body)
    assert created.status_code == 200
    assert created.json()["success"] is True and created.json()["id"].startswith("c")
    (contact,) = client.find("adam@loops.test")
    assert contact["id"] == created.json()["id"]
    assert {k: contact[k] for k in body} == body  # custom favoriteColor kept
    assert contact["subscribed"] is True
    again = client.call("POST", "/contacts/create", json={"email": "adam@loops.test"})
    assert again.status_code == 409 and again.json()["success"] is False
    assert truth(sandbox)["contacts"] == {"count": before["count"] + 1, "subscribed": before["subscribed"] + 1}


INVALID_BODIES = [
    {}, {"firstName": "No Email"}, {"email": "broken"}, {"email": "a@b.test", "subscribed": "yes"},
    {"email": "a@b.test", "firstName": 5}, {"email": "a@b.test", "tags": ["x"]},
]  # fmt: skip


def test_create_and_update_validation(client):
    # One test, not one per body: every reset rebuilds all five emulators.
    for body in INVALID_BODIES:
        for method, path in (("POST", "/contacts/create"), ("PUT", "/contacts/update")):
            response = client.call(method, path, json=body)
            assert response.status_code == 400, (path, body)
            assert response.json()["success"] is False
    assert client.call("POST", "/contacts/create", data="not json").status_code == 400


def test_update_merges_or_creates(sandbox, client):
    email = next(e for e in world_emails()[:20] if client.find(e))
    (old,) = client.find(email)
    response = client.call("PUT", "/contacts/update", json={"email": email, "subscribed": not old["subscribed"], "plan": "pro"})
    assert response.json() == {"success": True, "id": old["id"]}
    (new,) = client.find(email)
    assert new == {**old, "subscribed": not old["subscribed"], "plan": "pro"}
    # "If there is no contact with this email, one will be created."
    made = client.call("PUT", "/contacts/update", json={"email": "new.person@example.test", "firstName": "New"})
    assert made.status_code == 200
    assert client.find("new.person@example.test")[0]["firstName"] == "New"


def test_delete_by_email_or_user_id(sandbox, client):
    contacts = [c[0] for c in (client.find(e) for e in world_emails()[:12]) if c]
    by_email = contacts[0]
    by_user_id = next(c for c in contacts[1:] if c["userId"])
    count = truth(sandbox)["contacts"]["count"]
    assert client.call("POST", "/contacts/delete", json={"email": by_email["email"]}).json() == {"success": True, "message": "Contact deleted."}
    assert client.call("POST", "/contacts/delete", json={"userId": by_user_id["userId"]}).status_code == 200
    assert client.find(by_email["email"]) == [] and client.find(by_user_id["email"]) == []
    assert truth(sandbox)["contacts"]["count"] == count - 2
    assert client.call("POST", "/contacts/delete", json={"email": by_email["email"]}).status_code == 404
    assert client.call("POST", "/contacts/delete", json={"userId": "usr_nobody"}).status_code == 404
    assert client.call("POST", "/contacts/delete", json={}).status_code == 400


def test_events_are_recorded_and_update_or_add_contacts(sandbox, client):
    email = next(e for e in world_emails()[:20] if client.find(e))
    ok = client.call("POST", "/events/send", json={"email": email, "eventName": "conversion", "plan": "pro", "price": 99})
    assert ok.status_code == 200 and ok.json() == {"success": True}
    (contact,) = client.find(email)
    assert (contact["plan"], contact["price"]) == ("pro", 99)  # doc: properties update the contact
    new = client.call("POST", "/events/send", json={"email": "first.event@example.test", "eventName": "signup"})
    assert new.status_code == 200
    assert len(client.find("first.event@example.test")) == 1  # doc: the contact is added
    for body in ({"email": email}, {"eventName": "conversion"}, {"email": email, "eventName": ""}):
        assert client.call("POST", "/events/send", json=body).status_code == 400  # "Both fields are required."
    assert truth(sandbox)["events"] == {"count": 2}


def test_auth_failures_are_401(sandbox):
    url = sandbox.env()["SOURCES__LOOPS__BASE_URL"] + "/api/v1/contacts/find"
    for header in (None, "Bearer wrong-key", "sandbox-loops-key-0001", "Basic c2FuZGJveA=="):
        headers = {"Authorization": header} if header else {}
        response = requests.get(url, params={"email": "a@b.test"}, headers=headers, timeout=10)
        assert response.status_code == 401, header
        assert response.json() == {"success": False, "message": "Invalid API key"}
    # Auth comes before validation and before the rate limit.
    assert requests.post(url.replace("find", "create"), json={}, timeout=10).status_code == 401


def test_rate_limiter_sliding_window_with_an_injected_clock():
    now = [100.0]
    limiter = RateLimiter(limit=10, window=1.0, clock=lambda: now[0])
    assert all(limiter.allow("k") for _ in range(10))
    assert not limiter.allow("k")
    assert limiter.allow("other-team")  # per team
    now[0] += 0.5
    assert not limiter.allow("k")  # all ten still inside the window
    now[0] += 0.5  # the first ten leave the window exactly now
    assert all(limiter.allow("k") for _ in range(10))
    assert not limiter.allow("k")


def test_rate_limit_in_real_time(sandbox):
    env = sandbox.env()
    url = env["SOURCES__LOOPS__BASE_URL"] + "/api/v1/contacts/find"
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {env['SOURCES__LOOPS__API_KEY']}"
    statuses, limited = [], None
    for _ in range(30):
        response = http.get(url, params={"email": "a@b.test"}, timeout=10)
        statuses.append(response.status_code)
        if response.status_code == 429:
            limited = response
    assert statuses.count(200) >= 10 and statuses.count(429) >= 1
    assert limited is not None
    assert limited.headers["Retry-After"] == "1"
    assert limited.json() == {"success": False, "message": "Rate limit exceeded."}
    time.sleep(float(limited.headers["Retry-After"]))
    assert http.get(url, params={"email": "a@b.test"}, timeout=10).status_code == 200


def test_same_seed_same_contacts(sandbox, client):
    emails = world_emails()[:8]
    first = [client.call("GET", "/contacts/find", params={"email": e}).content for e in emails]
    first_truth = truth(sandbox)
    sandbox.reset()
    assert [client.call("GET", "/contacts/find", params={"email": e}).content for e in emails] == first
    assert truth(sandbox) == first_truth


def test_injected_fault_is_seen(sandbox, client):
    sandbox.add_fault("503", api="loops", count=1)
    assert client.call("GET", "/contacts/find", params={"email": "a@b.test"}).status_code == 503
    assert client.find("a@b.test") == []
    assert [e["fault"] for e in sandbox.requests("loops")] == ["503", None]
    assert sandbox.requests("loops")[0]["headers"]["authorization"] == "***"
