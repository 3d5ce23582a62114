"""proxy_headers: forwarding headers believed from trusted peers only, walked right to
left; client, scheme and Host as the Covet app and the ASGI app see them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from support.mw_servers import (
    Ipv6Covetd,
    ServerPool,
    UnixCovetd,
    client_from,
    ipv6_available,
)

APPS = ["mw_basic:app", "mw_starlette:app"]
PROXIES = ["127.0.0.1", "10.0.0.0/8", "2001:db8:ffff::/48"]
Headers = list[tuple[str, str]]


@pytest.fixture(scope="module")
def servers() -> Iterator[ServerPool]:
    with ServerPool() as pool:
        yield pool


def proxied(**options: Any) -> dict[str, Any]:
    return {"middleware": [{"proxy_headers": options}]}


def info(url: str, headers: Headers, client: httpx.Client | None = None) -> dict[str, Any]:
    get = httpx.get if client is None else client.get
    response = get(url + "/info", headers=headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


SPOOF = [
    ("x-forwarded-for", "203.0.113.7"),
    ("x-forwarded-proto", "https"),
    ("x-forwarded-host", "spoofed.example"),
    ("forwarded", "for=203.0.113.8;proto=https;host=spoofed.example"),
]


# -- trusted vs untrusted peers ------------------------------------------------------


@pytest.mark.parametrize("app", APPS)
def test_without_headers_the_request_keeps_its_peer(servers: ServerPool, app: str) -> None:
    server = servers(app, proxied())
    seen = info(server.url, [])
    assert seen["client"][0] == "127.0.0.1" and seen["client"][1] > 0
    assert seen["scheme"] == "http"
    assert seen["host"] == [f"127.0.0.1:{server.port}"]


@pytest.mark.parametrize("app", APPS)
def test_a_trusted_peer_sets_client_scheme_and_host(servers: ServerPool, app: str) -> None:
    server = servers(app, proxied())  # default trusted: 127.0.0.1 and ::1
    seen = info(
        server.url,
        [
            ("x-forwarded-for", "203.0.113.7"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "App.Example.com:8443"),
        ],
    )
    assert seen["client"] == ["203.0.113.7", 0]
    assert seen["scheme"] == "https"
    assert seen["host"] == ["app.example.com:8443"]
    assert seen["url"] == "https://app.example.com:8443/info"


@pytest.mark.parametrize("app", APPS)
def test_an_untrusted_peer_cannot_spoof_anything(servers: ServerPool, app: str) -> None:
    server = servers(app, proxied())
    with client_from("127.0.0.2") as client:  # not in the default trusted list
        seen = info(server.url, SPOOF, client)
    assert seen["client"][0] == "127.0.0.2"
    assert seen["scheme"] == "http"
    assert seen["host"] == [f"127.0.0.1:{server.port}"]


@pytest.mark.parametrize("app", APPS)
def test_forwarded_from_a_trusted_peer_is_honoured(servers: ServerPool, app: str) -> None:
    server = servers(app, proxied())
    seen = info(
        server.url, [("forwarded", 'for="[2001:db8:cafe::17]:4711";proto=https;host=a.test')]
    )
    assert seen["client"] == ["2001:db8:cafe::17", 4711]
    assert seen["scheme"] == "https"
    assert seen["host"] == ["a.test"]


def test_trusted_accepts_cidr_networks(servers: ServerPool) -> None:
    server = servers("mw_basic:app", proxied(trusted=["127.0.0.0/8"]))
    with client_from("127.0.0.2") as client:
        seen = info(server.url, [("x-forwarded-for", "203.0.113.7")], client)
    assert seen["client"] == ["203.0.113.7", 0]


def test_trusted_star_trusts_every_peer(servers: ServerPool) -> None:
    server = servers("mw_basic:app", proxied(trusted="*"))
    with client_from("127.0.0.3") as client:
        seen = info(server.url, [("x-forwarded-for", "203.0.113.7, 10.9.9.9")], client)
    assert seen["client"] == ["203.0.113.7", 0]  # every hop trusted: the leftmost


def test_a_peer_outside_trusted_is_ignored_even_on_loopback(servers: ServerPool) -> None:
    server = servers("mw_basic:app", proxied(trusted=["10.0.0.0/8"]))
    seen = info(server.url, [("x-forwarded-for", "203.0.113.7")])
    assert seen["client"][0] == "127.0.0.1"


def test_http_proxy_headers_trusted_is_the_default(servers: ServerPool) -> None:
    # DESIGN section 4: operators name their proxies once, under http.proxy_headers.
    config = {"http": {"proxy_headers": {"trusted": ["127.0.0.2"]}}, **proxied()}
    server = servers("mw_basic:app", config)
    with client_from("127.0.0.2") as client:
        seen = info(server.url, [("x-forwarded-for", "203.0.113.7")], client)
    assert seen["client"] == ["203.0.113.7", 0]
    seen = info(server.url, [("x-forwarded-for", "203.0.113.7")])  # from 127.0.0.1
    assert seen["client"][0] == "127.0.0.1"


def test_the_middlewares_own_trusted_wins_over_http_proxy_headers(servers: ServerPool) -> None:
    config = {
        "http": {"proxy_headers": {"trusted": ["127.0.0.2"]}},
        **proxied(trusted="10.0.0.0/8"),
    }
    server = servers("mw_basic:app", config)
    with client_from("127.0.0.2") as client:
        seen = info(server.url, [("x-forwarded-for", "203.0.113.7")], client)
    assert seen["client"][0] == "127.0.0.2"


# -- walking the chain ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("chain", "client"),
    [
        # Our peer 127.0.0.1 appended the last entry; 10.1.2.3 is a trusted proxy, so
        # 203.0.113.9 is the client, and what it claimed (198.51.100.1) is not believed.
        ("198.51.100.1, 203.0.113.9, 10.1.2.3", "203.0.113.9"),
        ("203.0.113.9", "203.0.113.9"),
        # The client itself claims to be a trusted proxy's client: still the client.
        ("10.6.6.6, 203.0.113.9, 10.1.2.3", "203.0.113.9"),
        # All hops trusted: the leftmost is the best we know.
        ("10.0.0.1, 10.0.0.2", "10.0.0.1"),
        ("2001:db8::5, 2001:db8:ffff::1", "2001:db8::5"),
        ("[2001:db8::5]:1234, 10.0.0.2", "2001:db8::5"),
    ],
)
@pytest.mark.parametrize("app", APPS)
def test_x_forwarded_for_is_walked_right_to_left(
    servers: ServerPool, app: str, chain: str, client: str
) -> None:
    server = servers(app, proxied(trusted=PROXIES))
    assert info(server.url, [("x-forwarded-for", chain)])["client"][0] == client


def test_x_forwarded_for_may_span_header_lines(servers: ServerPool) -> None:
    server = servers("mw_basic:app", proxied(trusted=PROXIES))
    headers = [("x-forwarded-for", "203.0.113.9"), ("x-forwarded-for", "10.1.2.3")]
    assert info(server.url, headers)["client"][0] == "203.0.113.9"


def test_an_ipv4_port_in_x_forwarded_for_is_kept(servers: ServerPool) -> None:
    server = servers("mw_basic:app", proxied(trusted=PROXIES))
    assert info(server.url, [("x-forwarded-for", "203.0.113.9:5555")])["client"] == [
        "203.0.113.9",
        5555,
    ]


@pytest.mark.parametrize(
    ("protos", "scheme"),
    [
        ("https", "https"),  # one value (nginx's proxy_set_header): every hop's
        ("https, http", "https"),  # aligned from the right: the client's hop is the first
        ("http, https", "http"),
        ("HTTPS", "https"),
    ],
)
def test_x_forwarded_proto_is_taken_from_the_clients_hop(
    servers: ServerPool, protos: str, scheme: str
) -> None:
    server = servers("mw_basic:app", proxied(trusted=PROXIES))
    headers = [("x-forwarded-for", "203.0.113.9, 10.1.2.3"), ("x-forwarded-proto", protos)]
    assert info(server.url, headers)["scheme"] == scheme


def test_forwarded_takes_proto_and_host_from_the_clients_element(servers: ServerPool) -> None:
    server = servers("mw_basic:app", proxied(trusted=PROXIES))
    forwarded = [
        ("forwarded", "for=198.51.100.1;proto=http;host=claimed.test"),
        ("forwarded", 'for=203.0.113.9;proto=https;host="shop.test", for=10.0.0.5;proto=http'),
    ]
    seen = info(server.url, forwarded)
    assert seen["client"] == ["203.0.113.9", 0]
    assert seen["scheme"] == "https"
    assert seen["host"] == ["shop.test"]


@pytest.mark.parametrize("node", ["unknown", "_hidden-proxy", '"_obf:_port"'])
def test_an_anonymous_hop_keeps_the_peer_but_gives_its_scheme(
    servers: ServerPool, node: str
) -> None:
    server = servers("mw_basic:app", proxied())
    seen = info(server.url, [("forwarded", f"for={node};proto=https")])
    assert seen["client"][0] == "127.0.0.1"
    assert seen["scheme"] == "https"


def test_forwarded_wins_over_x_forwarded(servers: ServerPool) -> None:
    server = servers("mw_basic:app", proxied())
    headers = [("forwarded", "for=203.0.113.1"), ("x-forwarded-for", "203.0.113.2")]
    assert info(server.url, headers)["client"][0] == "203.0.113.1"


def test_forwarded_false_reads_only_x_forwarded(servers: ServerPool) -> None:
    server = servers("mw_basic:app", proxied(forwarded=False))
    headers = [("forwarded", "for=203.0.113.1;proto=https"), ("x-forwarded-for", "203.0.113.2")]
    seen = info(server.url, headers)
    assert seen["client"][0] == "203.0.113.2"
    assert seen["scheme"] == "http"
    assert info(server.url, headers[:1])["client"][0] == "127.0.0.1"


def test_x_forwarded_false_reads_only_forwarded(servers: ServerPool) -> None:
    server = servers("mw_basic:app", proxied(x_forwarded=False))
    only_x = [("x-forwarded-for", "203.0.113.2"), ("x-forwarded-proto", "https")]
    seen = info(server.url, only_x)
    assert seen["client"][0] == "127.0.0.1"
    assert seen["scheme"] == "http"
    assert info(server.url, [("forwarded", "for=203.0.113.1")])["client"][0] == "203.0.113.1"


# -- malformed values ----------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        [("x-forwarded-for", "not-an-address")],
        [("x-forwarded-for", "203.0.113.1,,203.0.113.2")],
        [("x-forwarded-for", "203.0.113.1:99999")],
        [("x-forwarded-for", "203.0.113.1 203.0.113.2")],
        [("x-forwarded-for", "2001:db8::1]:80")],
        [("x-forwarded-for", "")],
        [("forwarded", 'for="203.0.113.1')],  # unterminated quote
        [("forwarded", "for=203.0.113.1;for=203.0.113.2")],  # a parameter twice
        [("forwarded", "for=203.0.113.1 junk")],
        [("forwarded", "=203.0.113.1")],
        [("forwarded", "for=evil.example;proto=https")],  # a name is no address
        # A broken Forwarded is not replaced by X-Forwarded-For: both are ignored.
        [("forwarded", "for=;"), ("x-forwarded-for", "203.0.113.9")],
    ],
    ids=lambda headers: " | ".join(f"{k}: {v}" for k, v in headers),
)
@pytest.mark.parametrize("app", APPS)
def test_malformed_headers_are_ignored_whole(
    servers: ServerPool, app: str, headers: Headers
) -> None:
    server = servers(app, proxied())
    seen = info(server.url, [*headers, ("x-forwarded-proto", "https")])
    assert seen["client"][0] == "127.0.0.1"
    assert seen["host"] == [f"127.0.0.1:{server.port}"]
    assert seen["scheme"] == "http"


@pytest.mark.parametrize("proto", ["javascript", "ftp", "https:", "h ttps"])
def test_an_unknown_scheme_is_ignored(servers: ServerPool, proto: str) -> None:
    server = servers("mw_basic:app", proxied())
    seen = info(server.url, [("x-forwarded-for", "203.0.113.7"), ("x-forwarded-proto", proto)])
    assert seen["client"][0] == "203.0.113.7"
    assert seen["scheme"] == "http"


@pytest.mark.parametrize("host", ["evil.example/path", "a b", "user@evil.example", "[zz]"])
def test_a_malformed_forwarded_host_is_ignored(servers: ServerPool, host: str) -> None:
    server = servers("mw_basic:app", proxied())
    seen = info(server.url, [("x-forwarded-host", host)])
    assert seen["host"] == [f"127.0.0.1:{server.port}"]


# -- other kinds of peer -------------------------------------------------------------


@pytest.mark.skipif(not ipv6_available(), reason="no IPv6 loopback")
@pytest.mark.parametrize(("trusted", "honoured"), [(None, True), (["127.0.0.1"], False)])
def test_an_ipv6_peer(trusted: list[str] | None, honoured: bool) -> None:
    options = {} if trusted is None else {"trusted": trusted}
    server = Ipv6Covetd("mw_basic:app", proxied(**options))
    try:
        server.start()
        seen = info(server.url, [("x-forwarded-for", "203.0.113.7")])
    finally:
        server.stop()
    assert seen["client"][0] == ("203.0.113.7" if honoured else "::1")


@pytest.mark.parametrize(("trust_unix_socket", "honoured"), [(None, True), (False, False)])
def test_a_unix_socket_peer(trust_unix_socket: bool | None, honoured: bool) -> None:
    options = {} if trust_unix_socket is None else {"trust_unix_socket": trust_unix_socket}
    server = UnixCovetd("mw_basic:app", proxied(**options))
    try:
        server.start()
        with server.client() as client:
            seen = info("", [("x-forwarded-for", "203.0.113.7")], client)
    finally:
        server.stop()
    assert seen["client"] == (["203.0.113.7", 0] if honoured else None)


def test_trusted_star_trusts_a_unix_socket_peer_too() -> None:
    server = UnixCovetd("mw_basic:app", proxied(trusted="*", trust_unix_socket=False))
    try:
        server.start()
        with server.client() as client:
            seen = info("", [("x-forwarded-for", "203.0.113.7")], client)
    finally:
        server.stop()
    assert seen["client"] == ["203.0.113.7", 0]
