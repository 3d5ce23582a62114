"""sessions: signed-cookie and Redis sessions, tampering, rotation, expiry, limits."""

from __future__ import annotations

import dataclasses
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from support.mwsecurity import check_config, dead_port, raw_exchange, redis_keys
from support.process import Covetd, wait_for
from support.services import redis_url

from covetd.middleware.sessions import SessionMiddleware
from covetd.middleware.signing import Signer, b64decode, b64encode

APP = "mw_session_app:app"
KEY_1 = "session-key-one-0123456789abcdefghijklmnop"
KEY_2 = "session-key-two-0123456789abcdefghijklmnop"
ENV = {"SESSION_KEY": KEY_1, "NEW_SESSION_KEY": KEY_2}


def sessions(**options: Any) -> dict[str, Any]:
    options.setdefault("secret_keys", ["${SESSION_KEY}"])
    options.setdefault("secure", False)  # the tests speak plain HTTP
    return {"middleware": [{"sessions": options}]}


def set_cookies(response: httpx.Response) -> list[str]:
    return response.headers.get_list("set-cookie")


def cookie_value(response: httpx.Response, name: str = "session") -> str:
    [header] = [h for h in set_cookies(response) if h.startswith(f"{name}=")]
    return header.split(";", 1)[0].split("=", 1)[1]


def get(server: Covetd, path: str, cookie: str | None = None, **kwargs: Any) -> httpx.Response:
    headers = {"cookie": f"session={cookie}".encode("latin-1")} if cookie is not None else {}
    return httpx.get(server.url + path, headers=headers, **kwargs)


@pytest.fixture(scope="module")
def cookie_server() -> Any:
    server = Covetd(APP, sessions(max_age=3600), env=ENV).start()
    yield server
    server.stop()


def test_a_session_round_trips_through_the_cookie(cookie_server: Covetd) -> None:
    first = get(cookie_server, "/count")
    assert first.json() == {"count": 1}
    [header] = set_cookies(first)
    value = r"session=[A-Za-z0-9_-]+\.\d+\.[A-Za-z0-9_-]{43}"
    attributes = "; HttpOnly; Max-Age=3600; Path=/; SameSite=Lax"
    assert re.fullmatch(value + re.escape(attributes), header), header
    second = get(cookie_server, "/count", cookie_value(first))
    assert second.json() == {"count": 2}
    assert get(cookie_server, "/session", cookie_value(second)).json() == {"count": 2}


def test_the_cookie_is_signed_json_readable_by_the_client(cookie_server: Covetd) -> None:
    value = cookie_value(get(cookie_server, "/set", params={"name": "ada"}))
    payload = value.split(".")[0]
    assert b64decode(payload) == b'{"name":"ada"}'  # signed, not encrypted: documented


def test_only_a_change_sends_a_cookie(cookie_server: Covetd) -> None:
    assert set_cookies(get(cookie_server, "/session")) == []  # new and untouched
    cookie = cookie_value(get(cookie_server, "/set", params={"a": "1"}))
    assert set_cookies(get(cookie_server, "/session", cookie)) == []  # read only
    assert set_cookies(get(cookie_server, "/set", cookie, params={"a": "1"})) == []  # same value
    changed = get(cookie_server, "/append", cookie, params={"item": "pen"})
    assert get(cookie_server, "/session", cookie_value(changed)).json() == {
        "a": "1",
        "items": ["pen"],
    }  # a change inside a list counts: the whole session is compared


def test_clearing_deletes_the_cookie(cookie_server: Covetd) -> None:
    cookie = cookie_value(get(cookie_server, "/set", params={"a": "1"}))
    [deletion] = set_cookies(get(cookie_server, "/clear", cookie))
    assert deletion.startswith('session=""; expires=')
    assert "Max-Age=0" in deletion


@pytest.mark.parametrize("part", ["payload", "timestamp", "signature"])
def test_a_tampered_cookie_gives_a_fresh_empty_session(cookie_server: Covetd, part: str) -> None:
    cookie = cookie_value(get(cookie_server, "/set", params={"role": "user"}))
    payload, stamp, signature = cookie.split(".")
    if part == "payload":  # grant ourselves admin: the signature no longer matches
        payload = b64encode(b'{"role":"admin"}')
    elif part == "timestamp":
        stamp = str(int(stamp) + 1)
    else:
        flipped = "A" if signature[5] != "A" else "B"
        signature = signature[:5] + flipped + signature[6:]
    response = get(cookie_server, "/session", f"{payload}.{stamp}.{signature}")
    assert response.json() == {}
    [deletion] = set_cookies(response)  # the dead cookie is removed
    assert "Max-Age=0" in deletion


@pytest.mark.parametrize("cookie", ["", "garbage", "a.b", "a.b.c.d", "é.1.x", "." * 50])
def test_garbage_cookies_give_an_empty_session(cookie_server: Covetd, cookie: str) -> None:
    response = get(cookie_server, "/session", cookie)
    assert response.status_code == 200
    assert response.json() == {}


def test_a_cookie_signed_with_an_unknown_key_is_refused(cookie_server: Covetd) -> None:
    forged = Signer([KEY_2], "sessions.cookie").sign_timestamped(b64encode(b'{"role":"admin"}'))
    assert get(cookie_server, "/session", forged).json() == {}


def test_an_expired_cookie_gives_an_empty_session(cookie_server: Covetd) -> None:
    signer = Signer([KEY_1], "sessions.cookie")
    payload = b64encode(b'{"user":"ada"}')
    fresh = signer.sign_timestamped(payload, int(time.time()) - 3500)
    stale = signer.sign_timestamped(payload, int(time.time()) - 3700)  # max_age is 3600
    assert get(cookie_server, "/session", fresh).json() == {"user": "ada"}
    assert get(cookie_server, "/session", stale).json() == {}


def test_keys_rotate(covetd) -> None:
    old = covetd(APP, sessions(secret_keys=["${SESSION_KEY}"]), env=ENV)
    cookie = cookie_value(get(old, "/set", params={"user": "ada"}))
    rotated = covetd(APP, sessions(secret_keys=["${NEW_SESSION_KEY}", "${SESSION_KEY}"]), env=ENV)
    assert get(rotated, "/session", cookie).json() == {"user": "ada"}  # old key accepted
    renewed = cookie_value(get(rotated, "/count", cookie))
    Signer([KEY_2], "sessions.cookie").unsign(renewed)  # signed with the new key...
    with pytest.raises(ValueError):
        Signer([KEY_1], "sessions.cookie").unsign(renewed)  # ...not the old one
    retired = covetd(APP, sessions(secret_keys=["${NEW_SESSION_KEY}"]), env=ENV)
    assert get(retired, "/session", renewed).json() == {"user": "ada", "count": 1}
    assert get(retired, "/session", cookie).json() == {}  # the old key is gone


def test_an_oversize_cookie_is_logged_and_not_sent(covetd) -> None:
    server = covetd(APP, sessions(max_size=500), env=ENV)
    small = get(server, "/big", params={"n": "100"})
    assert len(set_cookies(small)) == 1
    large = get(server, "/big", cookie_value(small), params={"n": "600"})
    assert large.status_code == 200
    assert set_cookies(large) == []  # the client keeps its previous, valid cookie
    assert "exceeds max_size 500" in wait_for(lambda: server.log(), what="log")
    assert get(server, "/session", cookie_value(small)).json() == {"blob": "x" * 100}


def test_the_default_size_limit_fits_browsers(cookie_server: Covetd) -> None:
    assert len(set_cookies(get(cookie_server, "/big", params={"n": "2500"}))) == 1
    assert set_cookies(get(cookie_server, "/big", params={"n": "3100"})) == []  # > 4093 bytes


def test_cookie_attributes_follow_the_options(covetd) -> None:
    options = {
        "cookie_name": "sid",
        "path": "/app",
        "domain": "example.com",
        "secure": True,
        "http_only": False,
        "same_site": "strict",
        "max_age": None,
    }
    server = covetd(APP, sessions(**options), env=ENV)
    [header] = set_cookies(get(server, "/set", params={"a": "1"}))
    attributes = header.split("; ")
    assert attributes[0].startswith("sid=")
    assert sorted(attributes[1:]) == [
        "Domain=example.com",
        "Path=/app",
        "SameSite=Strict",
        "Secure",
    ]


def test_cr_lf_in_a_session_value_never_reaches_the_wire(cookie_server: Covetd) -> None:
    evil = "x\r\nSet-Cookie: injected=1\r\n\r\n<script>"
    request = (
        b"GET /set?v=x%0D%0ASet-Cookie:%20injected=1%0D%0A%0D%0A%3Cscript%3E HTTP/1.1\r\n"
        b"Host: t\r\nConnection: close\r\n\r\n"
    )
    head, response = raw_exchange(cookie_server.port, request)
    lines = head.split(b"\r\n")
    assert [line for line in lines if line.lower().startswith(b"set-cookie")] == [
        line for line in lines if line.startswith(b"set-cookie: session=")
    ]
    assert len([line for line in lines if line.startswith(b"set-cookie")]) == 1
    assert b"injected" not in head
    cookie = response.header("set-cookie").split(";")[0].split("=", 1)[1]
    assert get(cookie_server, "/session", cookie).json() == {"v": evil}


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("domain", "example.com\r\nX-Injected: 1"),
        ("path", "/\r\nX-Injected: 1"),
        ("path", "/a;Domain=evil.com"),
        ("cookie_name", "session\r\nX-Injected: 1"),
    ],
)
def test_cr_lf_in_a_cookie_option_is_a_config_error(option: str, value: str) -> None:
    assert_config_error(sessions(**{option: value}), option, "expected a ")


@pytest.mark.parametrize(
    ("options", "key", "message"),
    [
        ({"secret_keys": ["short"]}, "secret_keys", "too short"),
        ({"secret_keys": []}, "secret_keys", "expected a list of secrets"),
        ({"same_site": "none"}, "secure", "SameSite=None without Secure"),
        ({"store": "redis"}, "url", "needs a Redis URL"),
        ({"max_age": -5}, "max_age", "expected a positive duration"),
    ],
)
def test_bad_options_are_refused(options: dict[str, Any], key: str, message: str) -> None:
    assert_config_error(sessions(**options), key, message)


def test_secret_keys_come_from_the_environment() -> None:
    server = Covetd(APP, sessions(), bind=False)  # SESSION_KEY unset
    try:
        result = check_config(server)
    finally:
        server.stop()
    assert result.returncode == 1
    assert "environment variable SESSION_KEY is not set" in result.stderr


def test_request_session_without_the_middleware_says_so(covetd) -> None:
    server = covetd(APP)
    assert "SessionMiddleware is not installed" in httpx.get(server.url + "/no-session").text


# --- the Redis store ------------------------------------------------------------------


def test_the_redis_store_keeps_data_server_side(covetd) -> None:
    url = redis_url()
    with redis_keys(url) as prefix:
        config = sessions(store="redis", url=url, prefix=prefix, max_age=600)
        first = covetd(APP, config, env=ENV)
        response = get(first, "/set", params={"user": "ada", "secret": "not-in-the-cookie"})
        cookie = cookie_value(response)
        assert "not-in-the-cookie" not in cookie and len(cookie) < 100
        client = redis.Redis.from_url(url)
        try:
            [key] = client.keys(prefix + "*")
            assert 590 <= client.ttl(key) <= 600
            second = covetd(APP, config, env=ENV)  # another instance, same Redis
            assert get(second, "/session", cookie).json() == {
                "secret": "not-in-the-cookie",
                "user": "ada",
            }
            assert set_cookies(get(second, "/session", cookie)) == []
            deleted = get(second, "/clear", cookie)
            assert "Max-Age=0" in set_cookies(deleted)[0]
            assert client.keys(prefix + "*") == []
            assert get(first, "/session", cookie).json() == {}
        finally:
            client.close()


def test_a_forged_session_id_is_refused_without_a_lookup(covetd) -> None:
    url = redis_url()
    with redis_keys(url) as prefix:
        server = covetd(APP, sessions(store="redis", url=url, prefix=prefix), env=ENV)
        cookie = cookie_value(get(server, "/set", params={"user": "ada"}))
        session_id, signature = cookie.rsplit(".", 1)
        forged = f"{session_id[:-1]}{'A' if session_id[-1] != 'A' else 'B'}.{signature}"
        assert get(server, "/session", forged).json() == {}
        assert get(server, "/session", cookie).json() == {"user": "ada"}


def test_a_down_redis_store_answers_503_quickly(covetd) -> None:
    url = f"redis://127.0.0.1:{dead_port()}/0"
    server = covetd(APP, sessions(store="redis", url=url), env=ENV)
    started = time.monotonic()
    signed_id = Signer([KEY_1], "sessions.id").sign("some-session-id")
    response = get(server, "/session", signed_id)
    assert response.status_code == 503
    assert time.monotonic() - started < 3
    assert get(server, "/session").status_code == 200  # no cookie: nothing to load


def test_every_option_is_documented() -> None:
    doc = (Path(__file__).parents[2] / "docs/middleware/sessions.md").read_text()
    for field in dataclasses.fields(SessionMiddleware.Options):
        assert f"`{field.name}`" in doc, field.name


def assert_config_error(config: dict[str, Any], key: str, message: str) -> None:
    server = Covetd(APP, config, bind=False, env=ENV)
    try:
        result = check_config(server)
    finally:
        server.stop()
    assert result.returncode == 1, result.stdout
    assert re.search(rf"covetd\.yaml:\d+: middleware\.sessions\.{key}: ", result.stderr), (
        result.stderr
    )
    assert message in result.stderr
