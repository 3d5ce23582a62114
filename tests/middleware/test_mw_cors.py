"""cors: the preflight matrix, simple requests, wildcards, regex origins, Vary, and the
configurations refused because they would be unsafe."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from support.mw_servers import ServerPool

from covetd.config.errors import ConfigError
from covetd.middleware.cors import CORSMiddleware
from covetd.middleware.options import parse_options

APPS = ["mw_basic:app", "mw_starlette:app"]
ALLOWED = "https://app.example"
CORS_HEADERS = (
    "access-control-allow-origin",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-allow-credentials",
    "access-control-expose-headers",
    "access-control-max-age",
)


@pytest.fixture(scope="module")
def servers() -> Iterator[ServerPool]:
    with ServerPool() as pool:
        yield pool


def cors(**options: Any) -> dict[str, Any]:
    return {"middleware": [{"cors": options}]}


def explicit(credentials: bool = False) -> dict[str, Any]:
    return cors(
        allow_origins=[ALLOWED, "http://localhost:3000"],
        allow_methods=["GET", "POST", "PUT"],
        allow_headers=["X-Token"],
        expose_headers=["X-Request-ID", "X-Total"],
        allow_credentials=credentials,
        max_age=120,
    )


def preflight(
    url: str, origin: str, method: str, headers: str | None = None, path: str = "/info"
) -> httpx.Response:
    sent = {"origin": origin, "access-control-request-method": method}
    if headers is not None:
        sent["access-control-request-headers"] = headers
    return httpx.options(url + path, headers=sent)


def vary(response: httpx.Response) -> list[str]:
    return [item.strip().lower() for item in response.headers.get("vary", "").split(",") if item]


# -- the preflight matrix -----------------------------------------------------------


@pytest.mark.parametrize("credentials", [False, True], ids=["anonymous", "credentials"])
@pytest.mark.parametrize("origin_ok", [True, False], ids=["origin-ok", "origin-bad"])
@pytest.mark.parametrize("method_ok", [True, False], ids=["method-ok", "method-bad"])
@pytest.mark.parametrize("header_ok", [True, False], ids=["header-ok", "header-bad"])
def test_preflight_matrix(
    servers: ServerPool, credentials: bool, origin_ok: bool, method_ok: bool, header_ok: bool
) -> None:
    server = servers("mw_basic:app", explicit(credentials))
    origin = ALLOWED if origin_ok else "https://evil.example"
    method = "PUT" if method_ok else "DELETE"
    requested = "Content-Type, X-Token" if header_ok else "content-type, x-other"
    response = preflight(server.url, origin, method, requested)
    assert "origin" in vary(response)
    if origin_ok and method_ok and header_ok:
        assert response.status_code == 200
        assert response.text == "OK"
        assert response.headers["access-control-allow-origin"] == ALLOWED
        assert response.headers["access-control-allow-methods"] == "GET, POST, PUT"
        assert response.headers["access-control-allow-headers"] == "content-type, x-token"
        assert response.headers["access-control-max-age"] == "120"
        assert response.headers.get("access-control-allow-credentials") == (
            "true" if credentials else None
        )
        return
    failures = [
        name
        for name, ok in (("origin", origin_ok), ("method", method_ok), ("headers", header_ok))
        if not ok
    ]
    assert response.status_code == 400
    assert response.text == "Disallowed CORS " + ", ".join(failures)
    assert not any(name in response.headers for name in CORS_HEADERS)


def test_a_preflight_is_answered_without_the_app(servers: ServerPool) -> None:
    server = servers("mw_basic:app", explicit())
    response = preflight(server.url, ALLOWED, "POST", path="/no/such/route")
    assert response.status_code == 200
    assert "access-control-allow-headers" not in response.headers  # none were asked for


def test_safelisted_headers_need_no_listing(servers: ServerPool) -> None:
    server = servers("mw_basic:app", cors(allow_origins=[ALLOWED]))
    requested = "accept, accept-language, content-language, content-type"
    response = preflight(server.url, ALLOWED, "GET", requested)
    assert response.status_code == 200
    assert response.headers["access-control-allow-headers"] == requested


def test_default_methods_are_get_only(servers: ServerPool) -> None:
    server = servers("mw_basic:app", cors(allow_origins=[ALLOWED]))
    assert preflight(server.url, ALLOWED, "GET").status_code == 200
    assert preflight(server.url, ALLOWED, "POST").status_code == 400


@pytest.mark.parametrize("requested", ["x token", "x-token;", "x-token, (x)"])
def test_a_malformed_requested_header_is_refused_even_by_star(
    servers: ServerPool, requested: str
) -> None:
    server = servers("mw_basic:app", cors(allow_origins="*", allow_headers="*"))
    response = preflight(server.url, ALLOWED, "GET", requested)
    assert response.status_code == 400
    assert response.text == "Disallowed CORS headers"


def test_methods_are_case_sensitive(servers: ServerPool) -> None:
    server = servers("mw_basic:app", explicit())
    assert preflight(server.url, ALLOWED, "put").status_code == 400


@pytest.mark.parametrize("method", ["", "GE T", "GET,PUT"])
def test_a_malformed_requested_method_is_refused(servers: ServerPool, method: str) -> None:
    server = servers("mw_basic:app", cors(allow_origins="*", allow_methods="*"))
    response = preflight(server.url, ALLOWED, method)
    assert response.status_code == 400
    assert response.text == "Disallowed CORS method"


# -- wildcards and regex -----------------------------------------------------------


def test_wildcards_echo_what_the_preflight_asked(servers: ServerPool) -> None:
    server = servers("mw_basic:app", cors(allow_origins="*", allow_methods="*", allow_headers="*"))
    response = preflight(server.url, "https://anyone.test", "PATCH", "x-anything, x-else")
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["access-control-allow-methods"] == "PATCH"
    assert response.headers["access-control-allow-headers"] == "x-anything, x-else"
    assert response.headers["access-control-max-age"] == "600"  # the default
    assert "origin" not in vary(response)  # the same answer for every origin


@pytest.mark.parametrize("app", APPS)
def test_any_origin_gets_a_star_without_vary(servers: ServerPool, app: str) -> None:
    server = servers(app, cors(allow_origins="*", expose_headers="*"))
    response = httpx.get(server.url + "/info", headers={"origin": "https://anyone.test"})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["access-control-expose-headers"] == "*"
    assert "access-control-allow-credentials" not in response.headers
    assert "origin" not in vary(response)


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("https://shop.example.org", True),
        ("https://blog.example.org", True),
        (ALLOWED, True),  # the list still counts
        ("https://shop.example.org.evil.test", False),  # the whole origin must match
        ("http://shop.example.org", False),
        ("https://example.org", False),
    ],
)
def test_allow_origin_regex(servers: ServerPool, origin: str, allowed: bool) -> None:
    server = servers(
        "mw_basic:app",
        cors(
            allow_origins=[ALLOWED],
            allow_origin_regex=r"https://[a-z]+\.example\.org",
            allow_methods="*",
            allow_headers="*",
            allow_credentials=True,
        ),
    )
    response = preflight(server.url, origin, "DELETE", "x-token")
    assert response.status_code == (200 if allowed else 400)
    simple = httpx.get(server.url + "/info", headers={"origin": origin})
    assert simple.headers.get("access-control-allow-origin") == (origin if allowed else None)
    assert simple.headers.get("access-control-allow-credentials") == ("true" if allowed else None)
    assert "origin" in vary(simple)


# -- simple (actual) requests -------------------------------------------------------


@pytest.mark.parametrize("app", APPS)
@pytest.mark.parametrize("credentials", [False, True])
def test_an_allowed_origin_gets_cors_headers(
    servers: ServerPool, app: str, credentials: bool
) -> None:
    server = servers(app, explicit(credentials))
    response = httpx.post(server.url + "/info", headers={"origin": ALLOWED})
    assert response.status_code == 200
    assert response.json()["scheme"] == "http"  # the app answered
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert response.headers["access-control-expose-headers"] == "X-Request-ID, X-Total"
    assert response.headers.get("access-control-allow-credentials") == (
        "true" if credentials else None
    )
    assert "origin" in vary(response)
    assert "access-control-allow-methods" not in response.headers  # preflight only


@pytest.mark.parametrize("app", APPS)
def test_a_disallowed_origin_gets_the_response_without_cors_headers(
    servers: ServerPool, app: str
) -> None:
    server = servers(app, explicit(credentials=True))
    response = httpx.get(server.url + "/info", headers={"origin": "https://evil.example"})
    assert response.status_code == 200
    assert not any(name in response.headers for name in CORS_HEADERS)
    assert "origin" in vary(response)


@pytest.mark.parametrize("app", APPS)
@pytest.mark.parametrize("config", [explicit(), cors(allow_origins="*")], ids=["list", "star"])
def test_a_request_without_origin_gets_only_vary(
    servers: ServerPool, app: str, config: dict[str, Any]
) -> None:
    server = servers(app, config)
    response = httpx.get(server.url + "/info")
    assert response.status_code == 200
    assert not any(name in response.headers for name in CORS_HEADERS)
    assert vary(response) == ["origin"]


def test_vary_is_merged_with_the_apps(servers: ServerPool) -> None:
    server = servers("mw_basic:app", explicit())
    own = httpx.get(server.url + "/own-headers", headers={"origin": ALLOWED})
    assert own.headers.get_list("vary") == ["Accept-Encoding, Origin"]
    star = httpx.get(server.url + "/vary-star", headers={"origin": ALLOWED})
    assert star.headers.get_list("vary") == ["*"]


def test_options_without_a_requested_method_is_not_a_preflight(servers: ServerPool) -> None:
    server = servers("mw_basic:app", explicit())
    response = httpx.options(server.url + "/info", headers={"origin": ALLOWED})
    assert response.status_code == 405  # the app's answer: /info has no OPTIONS
    assert response.headers["access-control-allow-origin"] == ALLOWED


def test_an_origin_listed_with_capitals_matches_the_browsers_form(servers: ServerPool) -> None:
    server = servers("mw_basic:app", cors(allow_origins=["https://App.Example"]))
    response = httpx.get(server.url + "/", headers={"origin": ALLOWED})
    assert response.headers["access-control-allow-origin"] == ALLOWED


# -- options -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "key", "message"),
    [
        (
            {"allow_origins": "*", "allow_credentials": True},
            "allow_origins",
            "would let any site act for your users",
        ),
        (
            {"allow_origins": [ALLOWED], "expose_headers": "*", "allow_credentials": True},
            "expose_headers",
            "not a wildcard for credentialed requests",
        ),
        (
            {"allow_origin_regex": "https://.*", "allow_credentials": True},
            "allow_origin_regex",
            "matches origins nobody owns",
        ),
        (
            {"allow_origin_regex": ".*", "allow_credentials": True},
            "allow_origin_regex",
            "matches origins nobody owns",
        ),
        ({"allow_origins": ["https://a.example/"]}, "allow_origins", "expected an origin"),
        ({"allow_origins": ["a.example"]}, "allow_origins", "expected an origin"),
        ({"allow_origins": ["*", ALLOWED]}, "allow_origins", "list nothing else"),
        ({"allow_origin_regex": "https://(a"}, "allow_origin_regex", "invalid regular expr"),
        ({"allow_methods": ["GE T"]}, "allow_methods", "expected a method"),
        ({"allow_headers": ["x token"]}, "allow_headers", "expected a header name"),
        ({"expose_headers": ["x:y"]}, "expose_headers", "expected a header name"),
        ({"allow_credentials": "true"}, "allow_credentials", "expected true or false"),
        ({"max_age": -1}, "max_age", "expected a duration"),
        ({"allow_origin": [ALLOWED]}, "allow_origin", 'did you mean "allow_origins"'),
    ],
)
def test_bad_options_are_refused(options: dict[str, Any], key: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_options(CORSMiddleware.Options, options, "cors", "c.yaml:7")
    assert str(caught.value).startswith(f"c.yaml:7: middleware.cors.{key}: ")
    assert message in str(caught.value)


def test_durations_are_read_like_the_config_files() -> None:
    options = parse_options(CORSMiddleware.Options, {"max_age": "10m"}, "cors")
    assert CORSMiddleware(_never, options).max_age == "600"


async def _never(request: Any) -> Any:
    raise AssertionError("not called")
