"""csrf: tokens tied to the session (or a cookie), Origin/Referer checks, and the
attacks they stop."""

from __future__ import annotations

import dataclasses
import re
import secrets
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.mwsecurity import check_config, self_signed
from support.process import Covetd, wait_for

from covetd.middleware.csrf import CSRFMiddleware
from covetd.middleware.signing import b64encode

APP = "mw_csrf_app:app"
KEY = "csrf-test-session-key-0123456789abcdefghij"
SESSIONS = {"sessions": {"secret_keys": [KEY], "secure": False}}


def config(**csrf: Any) -> dict[str, Any]:
    return {"middleware": [SESSIONS, {"csrf": csrf}]}


class Browser:
    """A client with its own cookie jar that posts from the site's own pages."""

    def __init__(self, server: Covetd, **kwargs: Any) -> None:
        self.server = server
        self.client = httpx.Client(base_url=server.url, **kwargs)
        self.origin = server.url

    def token(self) -> str:
        response = self.client.get("/form")
        assert response.status_code == 200
        return str(response.json()["token"])

    def post(self, path: str = "/submit", **kwargs: Any) -> httpx.Response:
        headers = {"origin": self.origin, **kwargs.pop("headers", {})}
        return self.client.post(path, headers=headers, **kwargs)

    def close(self) -> None:
        self.client.close()


@pytest.fixture(scope="module")
def server() -> Iterator[Covetd]:
    options = {"exempt": ["/webhooks/*"], "trusted_origins": ["https://app.example.com"]}
    options["trusted_origins"].append("https://*.partner.example")
    instance = Covetd(APP, config(**options)).start()
    yield instance
    instance.stop()


@pytest.fixture
def browser(server: Covetd) -> Iterator[Browser]:
    client = Browser(server)
    yield client
    client.close()


def refused(response: httpx.Response, reason: str) -> bool:
    return response.status_code == 403 and reason in response.text


def test_a_token_in_the_header_passes(browser: Browser) -> None:
    response = browser.post(headers={"x-csrf-token": browser.token()})
    assert response.status_code == 200
    assert response.json()["accepted"] is True


def test_a_token_in_the_form_passes_and_the_app_reads_the_form_again(browser: Browser) -> None:
    response = browser.post(data={"csrf_token": browser.token(), "name": "ada"})
    assert response.status_code == 200
    assert response.json() == {"accepted": True, "name": "ada"}


def test_tokens_are_masked_afresh_but_all_valid(browser: Browser) -> None:
    first, second = browser.token(), browser.token()
    assert first != second  # no repeated secret in pages (BREACH)
    assert browser.post(headers={"x-csrf-token": first}).status_code == 200
    assert browser.post(headers={"x-csrf-token": second}).status_code == 200


def test_a_missing_token_is_refused(browser: Browser) -> None:
    browser.token()
    assert refused(browser.post(data={"name": "ada"}), "the CSRF token is missing")


@pytest.mark.parametrize(
    "token",
    ["wrong", "", b64encode(secrets.token_bytes(32)), b64encode(secrets.token_bytes(64)), "%%%"],
)
def test_a_wrong_token_is_refused(browser: Browser, token: str) -> None:
    browser.token()
    response = browser.post(headers={"x-csrf-token": token}, data={"csrf_token": token})
    assert response.status_code == 403


def test_a_token_from_another_session_is_refused(server: Covetd) -> None:
    attacker, victim = Browser(server), Browser(server)
    try:
        stolen = attacker.token()  # the attacker's own, valid, token
        victim.token()  # the victim has a session with its own secret
        assert refused(victim.post(headers={"x-csrf-token": stolen}), "the CSRF token is wrong")
        assert attacker.post(headers={"x-csrf-token": stolen}).status_code == 200
    finally:
        attacker.close()
        victim.close()


def test_a_token_with_no_session_secret_is_refused(server: Covetd) -> None:
    attacker, victim = Browser(server), Browser(server)
    try:
        stolen = attacker.token()
        response = victim.post(headers={"x-csrf-token": stolen})  # victim never saw a form
        assert refused(response, "no CSRF secret")
    finally:
        attacker.close()
        victim.close()


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_every_unsafe_method_is_checked(browser: Browser, method: str) -> None:
    token = browser.token()
    headers = {"origin": browser.origin}
    assert browser.client.request(method, "/submit", headers=headers).status_code == 403
    headers["x-csrf-token"] = token
    assert browser.client.request(method, "/submit", headers=headers).status_code == 200


@pytest.mark.parametrize(
    "origin", ["https://evil.example", "null", "http://127.0.0.1:1", "https://127.0.0.1", "junk"]
)
def test_a_foreign_origin_is_refused_even_with_a_valid_token(browser: Browser, origin: str) -> None:
    token = browser.token()
    response = browser.post(headers={"origin": origin, "x-csrf-token": token})
    assert refused(response, "Origin is not allowed")


@pytest.mark.parametrize(
    ("origin", "status"),
    [
        ("https://app.example.com", 200),
        ("https://app.example.com:443", 200),
        ("http://app.example.com", 403),  # another scheme is another origin
        ("https://shop.partner.example", 200),
        ("https://partner.example.evil.com", 403),
        ("https://evilpartner.example", 403),
    ],
)
def test_trusted_origins(browser: Browser, origin: str, status: int) -> None:
    token = browser.token()
    assert browser.post(headers={"origin": origin, "x-csrf-token": token}).status_code == status


def test_the_referer_is_checked_when_there_is_no_origin(browser: Browser) -> None:
    token = browser.token()
    browser.origin = ""
    client = browser.client

    def post(referer: str) -> int:
        headers = {"referer": referer, "x-csrf-token": token}
        return client.post("/submit", headers=headers).status_code

    assert post(f"{browser.server.url}/form?step=2") == 200
    assert post("https://evil.example/attack") == 403
    assert client.post("/submit", headers={"x-csrf-token": token}).status_code == 200  # http


def test_over_https_a_request_without_origin_or_referer_is_refused(covetd, tmp_path) -> None:
    certfile, keyfile = self_signed(tmp_path)
    settings = config()
    settings["tls"] = {"certfile": certfile, "keyfile": keyfile}
    server = covetd(APP, settings, wait=False)
    context = ssl.create_default_context(cafile=certfile)
    url = f"https://127.0.0.1:{server.port}"
    client = httpx.Client(base_url=url, verify=context)
    try:
        wait_for(lambda: _answers(client), 15, what="covetd over TLS")
        token = client.get("/form").json()["token"]
        bare = client.post("/submit", headers={"x-csrf-token": token})
        assert refused(bare, "Origin and Referer are missing")
        with_origin = client.post("/submit", headers={"x-csrf-token": token, "origin": url})
        assert with_origin.status_code == 200
        downgraded = client.post(
            "/submit",
            headers={"x-csrf-token": token, "referer": f"http://127.0.0.1:{server.port}/"},
        )
        assert refused(downgraded, "Referer is not allowed")  # http page posting to https
    finally:
        client.close()


def test_exempt_paths_are_not_checked(browser: Browser) -> None:
    response = browser.client.post("/webhooks/stripe", headers={"origin": "https://stripe.com"})
    assert response.json() == {"webhook": "stripe"}
    assert (
        browser.client.post("/submit", headers={"origin": "https://stripe.com"}).status_code == 403
    )


def test_safe_methods_are_never_checked(browser: Browser) -> None:
    response = browser.client.get("/page", headers={"origin": "https://evil.example"})
    assert response.status_code == 200


def test_a_page_that_asks_for_no_token_writes_no_session(browser: Browser) -> None:
    assert browser.client.get("/page").headers.get_list("set-cookie") == []
    assert len(browser.client.get("/form").headers.get_list("set-cookie")) == 1
    assert browser.client.get("/form").headers.get_list("set-cookie") == []  # secret kept


# --- double submit ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def double_submit() -> Iterator[Covetd]:
    options = {"mode": "double_submit", "cookie_secure": False}
    instance = Covetd(APP, {"middleware": [{"csrf": options}]}).start()  # no sessions
    yield instance
    instance.stop()


def test_double_submit_sets_a_cookie_and_checks_the_echo(double_submit: Covetd) -> None:
    browser = Browser(double_submit)
    try:
        response = browser.client.get("/form")
        [header] = response.headers.get_list("set-cookie")
        assert re.fullmatch(r"csrftoken=[A-Za-z0-9_-]{43}; Path=/; SameSite=Strict", header)
        token = response.json()["token"]
        assert browser.post(headers={"x-csrf-token": token}).status_code == 200
        raw_cookie = browser.client.cookies["csrftoken"]  # what a script reads and echoes
        assert browser.post(headers={"x-csrf-token": raw_cookie}).status_code == 200
        assert refused(browser.post(), "the CSRF token is missing")
    finally:
        browser.close()


def test_double_submit_refuses_a_token_not_matching_the_cookie(double_submit: Covetd) -> None:
    attacker, victim = Browser(double_submit), Browser(double_submit)
    try:
        stolen = attacker.token()
        victim.token()
        assert refused(victim.post(headers={"x-csrf-token": stolen}), "the CSRF token is wrong")
        cookieless = Browser(double_submit)
        assert refused(cookieless.post(headers={"x-csrf-token": stolen}), "no CSRF secret")
        cookieless.close()
    finally:
        attacker.close()
        victim.close()


def test_synchronizer_mode_needs_the_sessions_middleware(covetd) -> None:
    server = covetd(APP, {"middleware": [{"csrf": {}}]})
    response = httpx.get(server.url + "/form")
    assert response.status_code == 500
    assert "SessionMiddleware is not installed" in server.log()


@pytest.mark.parametrize(
    ("options", "key", "message"),
    [
        ({"cookie_domain": "a.com\r\nX-Injected: 1"}, "cookie_domain", "expected a domain"),
        ({"cookie_path": "/\r\n"}, "cookie_path", "expected a cookie path"),
        ({"cookie_name": "__Host-csrf", "cookie_secure": False}, "cookie_name", "__Host-"),
        ({"trusted_origins": ["app.example.com"]}, "trusted_origins", "expected an origin"),
        ({"mode": "cookie"}, "mode", "synchronizer"),
        ({"exempt": ["webhooks/*"]}, "exempt", "path pattern"),
    ],
)
def test_bad_options_are_refused(options: dict[str, Any], key: str, message: str) -> None:
    server = Covetd(APP, config(**options), bind=False)
    try:
        result = check_config(server)
    finally:
        server.stop()
    assert result.returncode == 1
    assert re.search(rf"covetd\.yaml:\d+: middleware\.csrf\.{key}", result.stderr), result.stderr
    assert message in result.stderr


def test_every_option_is_documented() -> None:
    doc = (Path(__file__).parents[2] / "docs/middleware/csrf.md").read_text()
    for field in dataclasses.fields(CSRFMiddleware.Options):
        assert f"`{field.name}`" in doc, field.name


def _answers(client: httpx.Client) -> bool:
    try:
        return client.get("/page").status_code == 200
    except httpx.HTTPError:
        return False
