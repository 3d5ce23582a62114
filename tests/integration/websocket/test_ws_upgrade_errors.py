"""Upgrade requests the engine answers itself, before any app code (issue 5, deliverable
1): RFC 6455 §4.2.1 checks on the wire, byte by byte, with a raw socket.

Wrong or missing ``Sec-WebSocket-Version`` → 426 naming version 13; missing or invalid
``Sec-WebSocket-Key`` → 400; a POST upgrade → 400; then the connection is closed. An
upgrade the engine does not take (HTTP/1.0, no ``Connection: upgrade``) is plain HTTP;
an upgrade to an app without that route is a plain 404. A valid handshake made by hand
gets the RFC's ``Sec-WebSocket-Accept``.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
from support.process import Covetd
from support.rawhttp import RawConnection
from wsclients import KEY, random_key, refused, upgrade_request

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


@pytest.fixture(scope="module")
def server(module_covetd: Any) -> Covetd:
    server: Covetd = module_covetd("ws_covet:app", {"websocket": {"ping_interval": 0}})
    return server


def answer(server: Covetd, request: bytes) -> tuple[Any, bool]:
    """The response to ``request`` and whether the server then closed the connection."""
    with RawConnection(server.host, server.port, timeout=10) as conn:
        conn.send(request)
        response = conn.read_response()
        return response, conn.is_closed(timeout=10)


@pytest.mark.parametrize("version", ["8", "12", "14", "", "thirteen"])
def test_unsupported_version_is_426_naming_13(server: Covetd, version: str) -> None:
    response, closed = answer(server, upgrade_request(version=version))
    assert response.status == 426
    assert response.header("sec-websocket-version") == "13"
    assert response.header("upgrade") == "websocket"
    assert closed


def test_missing_version_is_426(server: Covetd) -> None:
    response, closed = answer(server, upgrade_request(version=None))
    assert (response.status, response.header("sec-websocket-version"), closed) == (426, "13", True)


def test_version_13_among_others_is_400(server: Covetd) -> None:
    """13 is spoken, but the field must hold one version (RFC 6455 §4.1 item 9)."""
    response, closed = answer(server, upgrade_request(version="13, 8"))
    assert (response.status, closed) == (400, True)


@pytest.mark.parametrize(
    "key",
    [
        None,  # missing
        "",
        "not base64!",
        base64.b64encode(b"15 bytes only!!").decode(),
        base64.b64encode(b"seventeen bytes!!").decode(),
    ],
)
def test_missing_or_invalid_key_is_400(server: Covetd, key: str | None) -> None:
    response, closed = answer(server, upgrade_request(key=key))
    assert response.status == 400
    assert response.header("sec-websocket-accept") is None
    assert closed


def test_two_keys_is_400(server: Covetd) -> None:
    request = upgrade_request(extra=[f"Sec-WebSocket-Key: {random_key()}"])
    response, closed = answer(server, request)
    assert (response.status, closed) == (400, True)


def test_post_upgrade_is_400(server: Covetd) -> None:
    response, closed = answer(server, upgrade_request(method="POST", extra=["Content-Length: 0"]))
    assert (response.status, closed) == (400, True)


@pytest.mark.parametrize(
    "extra",
    [
        ["Sec-WebSocket-Protocol: a b"],  # not a token list
        ['Sec-WebSocket-Extensions: permessage-deflate; x="unterminated'],
        ["Origin: https://a.example", "Origin: https://b.example"],
    ],
)
def test_malformed_websocket_headers_are_400(server: Covetd, extra: list[str]) -> None:
    response, closed = answer(server, upgrade_request(extra=extra))
    assert (response.status, closed) == (400, True)


def test_an_engine_refusal_reaches_no_handler(server: Covetd) -> None:
    """The 400/426 answers come from the engine: the app's 404 for an unknown path is
    not what a bad handshake to that path gets."""
    response, _ = answer(server, upgrade_request("/no/such/route", version="8"))
    assert response.status == 426


def test_http10_upgrade_is_served_as_plain_http(server: Covetd) -> None:
    """RFC 9110 §7.8 lets a server ignore Upgrade; HTTP/1.0 cannot switch: the request
    is an ordinary GET (the app has a GET route at /, none at /echo)."""
    response, _ = answer(server, upgrade_request("/", http_version="1.0"))
    assert (response.status, response.body) == (200, b"plain HTTP")
    response, _ = answer(server, upgrade_request("/echo", http_version="1.0"))
    assert response.status == 404


def test_upgrade_header_without_connection_upgrade_is_plain_http(server: Covetd) -> None:
    request = upgrade_request("/").replace(b"Connection: Upgrade\r\n", b"")
    with RawConnection(server.host, server.port, timeout=10) as conn:
        conn.send(request)
        response = conn.read_response()
        assert (response.status, response.body) == (200, b"plain HTTP")
        conn.send(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")  # still an HTTP connection
        assert conn.read_response().status == 200


def test_a_valid_handshake_by_hand(server: Covetd) -> None:
    with RawConnection(server.host, server.port, timeout=10) as conn:
        conn.send(upgrade_request("/echo"))
        head = conn.read_until(b"\r\n\r\n").decode("latin-1")
        lines = head.split("\r\n")
        assert lines[0] == "HTTP/1.1 101 Switching Protocols"
        fields = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        expected = base64.b64encode(hashlib.sha1(KEY.encode() + GUID).digest()).decode()
        assert fields["sec-websocket-accept"] == expected
        assert fields["upgrade"].lower() == "websocket"
        assert fields["connection"].lower() == "upgrade"
        assert "content-length" not in fields and "transfer-encoding" not in fields
        # RFC 6455 §5.7's example, masked by the client, comes back unmasked.
        conn.send(bytes([0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58]))
        assert conn.read_exactly(7) == b"\x81\x05Hello"


def test_app_without_websocket_routes_answers_plain_404(covetd: Any) -> None:
    """An app that has no WebSocket route at all: the upgrade gets the app's 404."""
    server = covetd("basic:app")
    response = refused(server, "/nowhere")
    assert response.status_code == 404
    assert response.headers.get("Sec-WebSocket-Accept") is None
    with RawConnection(server.host, server.port, timeout=10) as conn:
        conn.send(upgrade_request("/nowhere"))
        response = conn.read_response()
        assert (response.status, response.header("connection")) == (404, "close")
        assert conn.is_closed(timeout=3)  # well under http.keepalive_timeout
