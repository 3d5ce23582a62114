"""Request targets other than origin-form (RFC 9112 §3.2)."""

from __future__ import annotations

import json

import pytest
from support.probe import assert_error_and_close, read_response
from support.rawhttp import RawConnection


@pytest.fixture(scope="module")
def server(module_covetd):
    return module_covetd("engine_probe:app")


def inspect(server, target: str, host: str = "example.com") -> dict:
    with RawConnection(server.host, server.port) as conn:
        conn.send(f"GET {target} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        response = read_response(conn)
    assert response.status == 200, response
    return json.loads(response.body)


def test_absolute_form_routes_by_its_path_and_query(server) -> None:
    seen = inspect(server, "http://example.com/inspect?q=1&r=%41")
    assert (seen["path"], seen["raw_path"], seen["query_string"]) == (
        "/inspect",
        "/inspect",
        "q=1&r=%41",
    )


def test_absolute_form_authority_wins_over_host(server) -> None:
    # RFC 9112 §3.2.2: "When an origin server receives a request with an absolute-form
    # of request-target, the origin server MUST ignore the received Host header field
    # (if any) and instead use the host information of the request-target."
    seen = inspect(server, "http://target.example:8080/inspect?q=1", host="header.example")
    assert seen["url"] == "http://target.example:8080/inspect?q=1"


def test_asterisk_form_reaches_the_app(server) -> None:
    # OPTIONS * is valid: the parser passes it on (the router has no "*" route: 404)
    # and the connection stays usable.
    with RawConnection(server.host, server.port) as conn:
        conn.send(b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n")
        response = read_response(conn)
        assert response.status == 404
        assert response.header("connection") is None
        conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(conn).body == b"hello"


@pytest.mark.parametrize(
    "line",
    [
        b"CONNECT example.com:443 HTTP/1.1",
        b"GET example.com:80 HTTP/1.1",
        b"GET * HTTP/1.1",
        b"GET ftp://example.com/ HTTP/1.1",
    ],
    ids=["connect", "authority-form", "asterisk-on-get", "other-scheme"],
)
def test_unsupported_target_forms_are_400(server, line: bytes) -> None:
    with RawConnection(server.host, server.port) as conn:
        conn.send(line + b"\r\nHost: example.com\r\n\r\n")
        assert_error_and_close(conn, 400)
