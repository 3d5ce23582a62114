"""security_headers: defaults, each header overridable or off, HSTS only over https
(TLS, or a trusted X-Forwarded-Proto), and never over a header the app set."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from support.mw_servers import ServerPool, TlsCovetd, client_from

from covetd.config.errors import ConfigError
from covetd.middleware.options import parse_options
from covetd.middleware.security_headers import SecurityHeadersMiddleware

APPS = ["mw_basic:app", "mw_starlette:app"]
DEFAULTS = {
    "content-security-policy": "base-uri 'self'; object-src 'none'; frame-ancestors 'self'",
    "x-frame-options": "SAMEORIGIN",
    "x-content-type-options": "nosniff",
    "referrer-policy": "strict-origin-when-cross-origin",
    "permissions-policy": "camera=(), geolocation=(), microphone=()",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}
HTTPS = {"x-forwarded-proto": "https"}


@pytest.fixture(scope="module")
def servers() -> Iterator[ServerPool]:
    with ServerPool() as pool:
        yield pool


def secured(**options: Any) -> dict[str, Any]:
    """proxy_headers (default trust: 127.0.0.1) then security_headers."""
    return {"middleware": [{"proxy_headers": {}}, {"security_headers": options}]}


def get(url: str, path: str = "/", headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.get(url + path, headers=headers or {})


@pytest.mark.parametrize("app", APPS)
def test_defaults_over_http(servers: ServerPool, app: str) -> None:
    response = get(servers(app, secured()).url)
    assert response.status_code == 200
    for name, value in DEFAULTS.items():
        assert response.headers.get_list(name) == [value], name
    assert "strict-transport-security" not in response.headers


@pytest.mark.parametrize("app", APPS)
def test_hsts_over_https_told_by_a_trusted_proxy(servers: ServerPool, app: str) -> None:
    response = get(servers(app, secured()).url, headers=HTTPS)
    assert response.headers["strict-transport-security"] == "max-age=31536000"


def test_hsts_is_not_sent_when_an_untrusted_peer_claims_https(servers: ServerPool) -> None:
    server = servers("mw_basic:app", secured())
    with client_from("127.0.0.2") as client:
        response = client.get(server.url + "/", headers=HTTPS)
    assert response.status_code == 200
    assert "strict-transport-security" not in response.headers


def test_hsts_over_tls() -> None:
    server = TlsCovetd("mw_basic:app", {"middleware": [{"security_headers": {}}]})
    try:
        server.start()
        with server.client() as client:
            response = client.get("/info")
    finally:
        server.stop()
    assert response.json()["scheme"] == "https"
    assert response.headers["strict-transport-security"] == "max-age=31536000"


def test_the_proxy_may_come_after_in_the_chain(servers: ServerPool) -> None:
    """The scheme is read when the response comes back, after inner middleware ran."""
    config = {"middleware": [{"security_headers": {}}, {"proxy_headers": {}}]}
    response = get(servers("mw_basic:app", config).url, headers=HTTPS)
    assert response.headers["strict-transport-security"] == "max-age=31536000"


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"hsts_max_age": 0}, "max-age=0"),
        ({"hsts_max_age": "1h"}, "max-age=3600"),
        ({"hsts_include_subdomains": True}, "max-age=31536000; includeSubDomains"),
        (
            {"hsts_include_subdomains": True, "hsts_preload": True, "hsts_max_age": 63072000},
            "max-age=63072000; includeSubDomains; preload",
        ),
        ({"hsts_max_age": None}, None),
    ],
)
def test_hsts_options(servers: ServerPool, options: dict[str, Any], expected: str | None) -> None:
    response = get(servers("mw_basic:app", secured(**options)).url, headers=HTTPS)
    assert response.headers.get("strict-transport-security") == expected


@pytest.mark.parametrize(
    ("key", "value", "header"),
    [
        ("frame_options", "DENY", "x-frame-options"),
        ("referrer_policy", "no-referrer", "referrer-policy"),
        ("permissions_policy", "geolocation=(self)", "permissions-policy"),
        ("cross_origin_opener_policy", "same-origin-allow-popups", "cross-origin-opener-policy"),
        ("cross_origin_resource_policy", "cross-origin", "cross-origin-resource-policy"),
        ("content_type_options", "nosniff", "x-content-type-options"),
    ],
)
def test_each_header_is_overridable_and_null_turns_it_off(
    servers: ServerPool, key: str, value: str, header: str
) -> None:
    """(The policy itself: test_frame_ancestors_joins_the_policy.)"""
    others = {name: value for name, value in DEFAULTS.items() if name != header}
    changed = get(servers("mw_basic:app", secured(**{key: value})).url)
    assert changed.headers[header] == value
    off = get(servers("mw_basic:app", secured(**{key: None})).url)
    assert header not in off.headers
    for response in (changed, off):
        for name, default in others.items():
            assert response.headers.get(name) == default, name


@pytest.mark.parametrize(
    ("options", "csp"),
    [
        (
            {"frame_ancestors": "'none'"},
            "base-uri 'self'; object-src 'none'; frame-ancestors 'none'",
        ),
        ({"frame_ancestors": None}, "base-uri 'self'; object-src 'none'"),
        (
            {"content_security_policy": "default-src 'self'; frame-ancestors https://a.test;"},
            "default-src 'self'; frame-ancestors https://a.test",
        ),
        (
            {"content_security_policy": "default-src 'self'"},
            "default-src 'self'; frame-ancestors 'self'",
        ),
        ({"content_security_policy": None}, "frame-ancestors 'self'"),
        ({"content_security_policy": None, "frame_ancestors": None}, None),
    ],
)
def test_frame_ancestors_joins_the_policy(
    servers: ServerPool, options: dict[str, Any], csp: str | None
) -> None:
    response = get(servers("mw_basic:app", secured(**options)).url)
    assert response.headers.get("content-security-policy") == csp


def test_csp_report_only(servers: ServerPool) -> None:
    response = get(servers("mw_basic:app", secured(csp_report_only=True)).url)
    assert "content-security-policy" not in response.headers
    assert (
        response.headers["content-security-policy-report-only"]
        == DEFAULTS["content-security-policy"]
    )


@pytest.mark.parametrize("app", APPS)
def test_a_header_the_app_set_is_never_overwritten(servers: ServerPool, app: str) -> None:
    response = get(servers(app, secured()).url, "/own-headers", HTTPS)
    assert response.headers.get_list("content-security-policy") == ["default-src 'none'"]
    assert response.headers.get_list("x-frame-options") == ["DENY"]
    assert response.headers["x-content-type-options"] == "nosniff"  # not set by the app
    if app == "mw_basic:app":
        assert response.headers.get_list("strict-transport-security") == ["max-age=5"]
        assert response.headers.get_list("referrer-policy") == ["no-referrer"]


@pytest.mark.parametrize("app", APPS)
def test_error_responses_are_covered_too(servers: ServerPool, app: str) -> None:
    response = get(servers(app, secured()).url, "/no/such/page", HTTPS)
    assert response.status_code == 404
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["strict-transport-security"] == "max-age=31536000"


# -- options -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "key", "message"),
    [
        ({"hsts_preload": True}, "hsts_preload", "preload needs hsts_include_subdomains"),
        (
            {"hsts_preload": True, "hsts_include_subdomains": True, "hsts_max_age": 86400},
            "hsts_preload",
            "hsts_max_age >= 31536000",
        ),
        ({"hsts_max_age": -1}, "hsts_max_age", "expected a duration"),
        ({"frame_options": "ALLOW-FROM https://a.test"}, "frame_options", '"DENY" or'),
        ({"referrer_policy": "bogus"}, "referrer_policy", "expected one of"),
        ({"content_security_policy": "a\nb"}, "content_security_policy", "printable ASCII"),
        ({"cross_origin_opener_policy": "x"}, "cross_origin_opener_policy", "expected one of"),
        ({"cross_origin_resource_policy": "x"}, "cross_origin_resource_policy", "expected one"),
        ({"csp_report_only": 1}, "csp_report_only", "expected true or false"),
    ],
)
def test_bad_options_are_refused(options: dict[str, Any], key: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_options(SecurityHeadersMiddleware.Options, options, "security_headers", "c.yaml:4")
    assert str(caught.value).startswith(f"c.yaml:4: middleware.security_headers.{key}: ")
    assert message in str(caught.value)
