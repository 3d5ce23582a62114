"""trusted_host: 400 for a Host not allowed; port ignored; *.domain; www redirect."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from support.mw_servers import ServerPool
from support.rawhttp import RawConnection

from covetd.config.errors import ConfigError
from covetd.middleware.options import parse_options
from covetd.middleware.trusted_host import TrustedHostMiddleware

APPS = ["mw_basic:app", "mw_starlette:app"]


@pytest.fixture(scope="module")
def servers() -> Iterator[ServerPool]:
    with ServerPool() as pool:
        yield pool


def hosts(*allowed: str, **options: Any) -> dict[str, Any]:
    return {"middleware": [{"trusted_host": {"allowed_hosts": list(allowed), **options}}]}


def get(url: str, host: str, path: str = "/info") -> httpx.Response:
    return httpx.get(url + path, headers={"host": host}, follow_redirects=False)


@pytest.mark.parametrize("app", APPS)
@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("example.com", 200),
        ("example.com:8080", 200),  # the port is not part of the match
        ("EXAMPLE.com", 200),
        ("example.com.", 200),  # the root label's dot
        ("api.example.com", 200),
        ("other.example", 400),
        ("sub.example.com.evil.test", 400),
        ("evil.test:80", 400),
        ("example.com.evil.test", 400),
        ("xexample.com", 400),
    ],
)
def test_exact_names(servers: ServerPool, app: str, host: str, status: int) -> None:
    server = servers(app, hosts("example.com", "api.example.com"))
    response = get(server.url, host)
    assert response.status_code == status
    if status == 400:
        assert response.text == "Invalid host header"


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("a.example.com", 200),
        ("a.b.example.com:9000", 200),
        ("example.com", 400),  # *.example.com is for subdomains only
        ("badexample.com", 400),
        ("a.example.com.evil.test", 400),
        ("a;b.example.com", 400),  # the engine takes RFC 3986 reg-names; we want DNS names
        ("a%2eexample.com", 400),
    ],
)
def test_subdomain_wildcard(servers: ServerPool, host: str, status: int) -> None:
    server = servers("mw_basic:app", hosts("*.example.com", www_redirect=False))
    assert get(server.url, host).status_code == status


def test_a_subdomain_wildcard_redirects_the_bare_domain_to_www(servers: ServerPool) -> None:
    server = servers("mw_basic:app", hosts("*.example.com"))
    response = get(server.url, "example.com", "/")
    assert response.status_code == 307
    assert response.headers["location"] == "http://www.example.com/"


def test_star_allows_any_host(servers: ServerPool) -> None:
    server = servers("mw_basic:app", hosts("*"))
    for host in ("anything.test", "x_y", "a;b", ""):
        assert get(server.url, host).status_code == 200, host


def test_an_ip_literal_host(servers: ServerPool) -> None:
    server = servers("mw_basic:app", hosts("127.0.0.1", "[::1]"))
    assert httpx.get(server.url + "/").status_code == 200  # Host: 127.0.0.1:PORT
    assert get(server.url, "[::1]:8000").status_code == 200
    assert get(server.url, "[::2]").status_code == 400


def test_a_request_without_host_is_refused(servers: ServerPool) -> None:
    server = servers("mw_basic:app", hosts("example.com"))
    with RawConnection(server.host, server.port) as conn:
        conn.send(b"GET /info HTTP/1.0\r\n\r\n")  # HTTP/1.0 may omit Host
        assert conn.read_response().status == 400


# -- www redirect --------------------------------------------------------------------


@pytest.mark.parametrize("app", APPS)
def test_www_redirect_keeps_port_path_and_query(servers: ServerPool, app: str) -> None:
    server = servers(app, hosts("www.example.com"))
    response = get(server.url, "Example.com:8080", "/info?a=1&b=%20")
    assert response.status_code == 307
    assert response.headers["location"] == "http://www.example.com:8080/info?a=1&b=%20"
    assert get(server.url, "www.example.com").status_code == 200
    assert get(server.url, "other.example.com").status_code == 400


def test_www_redirect_cannot_be_pointed_elsewhere(servers: ServerPool) -> None:
    server = servers("mw_basic:app", hosts("www.example.com"))
    response = get(server.url, "example.com", "//evil.test/x")
    assert response.status_code == 307
    assert response.headers["location"] == "http://www.example.com//evil.test/x"
    assert httpx.URL(response.headers["location"]).host == "www.example.com"


def test_www_redirect_uses_the_forwarded_scheme(servers: ServerPool) -> None:
    config = {
        "middleware": [
            {"proxy_headers": {}},
            {"trusted_host": {"allowed_hosts": ["www.example.com"]}},
        ]
    }
    server = servers("mw_basic:app", config)
    response = httpx.get(
        server.url + "/",
        headers={"x-forwarded-proto": "https", "x-forwarded-host": "example.com"},
    )
    assert response.status_code == 307
    assert response.headers["location"] == "https://www.example.com/"


def test_www_redirect_false_refuses_instead(servers: ServerPool) -> None:
    server = servers("mw_basic:app", hosts("www.example.com", www_redirect=False))
    assert get(server.url, "example.com").status_code == 400


def test_the_forwarded_host_is_the_one_checked(servers: ServerPool) -> None:
    config = {
        "middleware": [
            {"proxy_headers": {}},
            {"trusted_host": {"allowed_hosts": ["public.example"]}},
        ]
    }
    server = servers("mw_basic:app", config)
    assert httpx.get(server.url + "/").status_code == 400  # Host: 127.0.0.1:PORT
    forwarded = httpx.get(server.url + "/", headers={"x-forwarded-host": "public.example"})
    assert forwarded.status_code == 200


# -- options -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "middleware.trusted_host.allowed_hosts: required"),
        ({"allowed_hosts": []}, "allowed_hosts: expected a list"),
        ({"allowed_hosts": ["ex ample.com"]}, 'expected a host name, "*.domain" or "*"'),
        ({"allowed_hosts": ["*.*.example.com"]}, 'expected a host name, "*.domain" or "*"'),
        ({"allowed_hosts": ["ex*ample.com"]}, 'expected a host name, "*.domain" or "*"'),
        ({"allowed_hosts": ["example.com:80"]}, 'expected a host name, "*.domain" or "*"'),
        ({"allowed_hosts": ["*", "a.example"]}, '"*" allows every host'),
        ({"allowed_hosts": ["a.example"], "www_redirect": "yes"}, "expected true or false"),
    ],
)
def test_bad_options_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_options(TrustedHostMiddleware.Options, options, "trusted_host", "c.yaml:3")
    assert str(caught.value).startswith("c.yaml:3: middleware.trusted_host")
    assert message in str(caught.value)


def test_a_single_host_may_be_written_bare() -> None:
    options = parse_options(TrustedHostMiddleware.Options, {"allowed_hosts": "a.example"}, "t")
    assert options.allowed_hosts == ("a.example",)
