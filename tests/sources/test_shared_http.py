"""sources/_shared/http.py: page bodies decoded with orjson where it reads them the
same as requests' own decoder, and by that decoder everywhere else."""

from __future__ import annotations

import types

import pytest
import requests
from requests import Response

from sources._shared import http


def response(body: bytes, content_type: str = "application/json") -> Response:
    r = Response()
    r._content = body
    r.status_code = 200
    r.headers["Content-Type"] = content_type
    r.encoding = requests.utils.get_encoding_from_headers(r.headers)
    return r


@pytest.fixture
def orjson_calls(monkeypatch) -> list[bytes]:
    """Bodies orjson decoded (not those it refused)."""
    calls: list[bytes] = []
    real = http.orjson

    def loads(body: bytes):
        value = real.loads(body)
        calls.append(body)
        return value

    monkeypatch.setattr(http, "orjson", types.SimpleNamespace(loads=loads, JSONDecodeError=real.JSONDecodeError))
    return calls


@pytest.mark.parametrize(
    "body, content_type, by_orjson",
    [
        (b'[{"call": {"uuid": "a", "revenue": 12.34, "tags": {"k": ["v"]}, "n": null}}]', "application/json", True),
        ('{"name": "Caf\u00e9 \u2014 \U0001f4de"}'.encode(), "application/json; charset=utf-8", True),
        (b'{"a": 1, "a": 2}', "application/json", True),
        (b"\xef\xbb\xbf{\"bom\": true}", "application/json", False),  # orjson refuses a BOM
        (b"[12345678901234567890123, 1e400]", "application/json", False),  # beyond 64 bits, infinity
        ('{"name": "Caf\u00e9"}'.encode("latin-1"), "application/json; charset=iso-8859-1", False),  # declared charset
    ],
)
def test_a_body_decodes_to_what_requests_gives(orjson_calls, body, content_type, by_orjson):
    plain = response(body, content_type)
    fast = response(body, content_type)
    fast.json = http._json_decoder(fast)
    assert fast.json() == plain.json()
    assert bool(orjson_calls) is by_orjson


@pytest.mark.parametrize("content_type", ["application/json", "text/html"])
def test_a_body_that_is_not_json_fails_as_before(orjson_calls, content_type):
    fast = response(b"<html>busy</html>", content_type)
    fast.json = http._json_decoder(fast)
    with pytest.raises(requests.exceptions.JSONDecodeError):
        fast.json()
    assert not orjson_calls
