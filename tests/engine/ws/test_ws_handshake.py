"""The opening handshake (RFC 6455 §4.2): request checks with their HTTP answers, the
accept key, the header list syntax, and the 101 head."""

from __future__ import annotations

import pytest
from support.h1 import Recorder

from covetd.app.head import RequestHead
from covetd.engine.h1.limits import Limits
from covetd.engine.h1.parser import RequestParser
from covetd.engine.ws import (
    ExtensionOffer,
    HandshakeError,
    UpgradeRequest,
    UpgradeRequired,
    accept_key,
    accept_response,
    parse_upgrade_request,
)
from covetd.engine.ws.headers import parse_extensions, parse_token_list

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 §1.3's example
BASE = [
    (b"host", b"server.example.com"),
    (b"upgrade", b"websocket"),
    (b"connection", b"Upgrade"),
    (b"sec-websocket-key", KEY),
    (b"sec-websocket-version", b"13"),
]


def parse(
    headers: list[tuple[bytes, bytes]], method: str = "GET", version: str = "1.1"
) -> UpgradeRequest:
    return parse_upgrade_request(method, version, headers)


def without(name: bytes) -> list[tuple[bytes, bytes]]:
    return [h for h in BASE if h[0] != name]


def replaced(name: bytes, value: bytes) -> list[tuple[bytes, bytes]]:
    return [*without(name), (name, value)]


def refused(
    headers: list[tuple[bytes, bytes]], method: str = "GET", version: str = "1.1"
) -> HandshakeError:
    with pytest.raises(HandshakeError) as caught:
        parse(headers, method, version)
    return caught.value


# -- the request --------------------------------------------------------------------------


def test_rfc_example_request() -> None:
    request = parse(
        [
            *BASE,
            (b"origin", b"http://example.com"),
            (b"sec-websocket-protocol", b"chat, superchat"),
        ]
    )
    assert request == UpgradeRequest(KEY, ("chat", "superchat"), (), "http://example.com")


def test_accept_key_of_the_rfc_example() -> None:
    assert accept_key(KEY) == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_header_values_are_case_insensitive_token_lists() -> None:
    upgrade = [*without(b"upgrade"), (b"upgrade", b"WebSocket")]
    assert parse(upgrade).key == KEY
    connection = [*without(b"connection"), (b"connection", b"keep-alive, UPGRADE")]
    assert parse(connection).key == KEY
    split = [*without(b"connection"), (b"connection", b"keep-alive"), (b"connection", b"upgrade")]
    assert parse(split).key == KEY


@pytest.mark.parametrize(("method", "version"), [("POST", "1.1"), ("HEAD", "1.1"), ("GET", "1.0")])
def test_not_a_get_over_http11_is_400(method: str, version: str) -> None:
    assert refused(BASE, method, version).status == 400


@pytest.mark.parametrize(
    "headers",
    [
        without(b"upgrade"),
        replaced(b"upgrade", b"h2c"),
        without(b"connection"),
        replaced(b"connection", b"keep-alive"),
    ],
)
def test_not_asking_to_upgrade_is_426(headers: list[tuple[bytes, bytes]]) -> None:
    error = refused(headers)
    assert isinstance(error, UpgradeRequired)
    assert error.status == 426
    assert (b"upgrade", b"websocket") in error.headers


@pytest.mark.parametrize("value", [b"8", b"12", b"14", b"", b"13a"])
def test_other_versions_are_426_naming_13(value: bytes) -> None:
    error = refused(replaced(b"sec-websocket-version", value))
    assert error.status == 426
    assert (b"sec-websocket-version", b"13") in error.headers
    assert refused(without(b"sec-websocket-version")).status == 426


def test_version_more_than_once_is_400() -> None:
    assert refused([*BASE, (b"sec-websocket-version", b"13")]).status == 400
    assert refused(replaced(b"sec-websocket-version", b"13, 8")).status == 400


@pytest.mark.parametrize(
    "key",
    [
        b"",
        b"dGhlIHNhbXBsZSBub25jZQ",  # unpadded
        b"dGhlIHNhbXBsZSBub25jZWU=",  # 17 bytes
        b"dGhlIHNhbXBsZSBub25j",  # 15 bytes
        b"dGhlIHNhbXBsZSBub25jZQ==!",
        b"dGhlIHNhb XBsZSBub25jZQ==",
    ],
)
def test_key_must_be_base64_of_16_bytes(key: bytes) -> None:
    assert refused(replaced(b"sec-websocket-key", key)).status == 400


def test_key_exactly_once() -> None:
    assert refused(without(b"sec-websocket-key")).status == 400
    assert refused([*BASE, (b"sec-websocket-key", KEY)]).status == 400


def test_subprotocols_in_order_without_repeats() -> None:
    request = parse(
        [*BASE, (b"sec-websocket-protocol", b"b, a"), (b"sec-websocket-protocol", b"c,, a")]
    )
    assert request.subprotocols == ("b", "a", "c")
    assert refused([*BASE, (b"sec-websocket-protocol", b"chat v2")]).status == 400
    assert refused([*BASE, (b"sec-websocket-protocol", b"a/b")]).status == 400


def test_origin_is_available_and_single() -> None:
    assert parse(BASE).origin is None
    assert parse([*BASE, (b"origin", b"https://app.example")]).origin == "https://app.example"
    assert refused([*BASE, (b"origin", b"https://a"), (b"origin", b"https://b")]).status == 400


def test_extensions_are_parsed_and_malformed_ones_are_400() -> None:
    request = parse(
        [*BASE, (b"sec-websocket-extensions", b"permessage-deflate; client_max_window_bits, foo")]
    )
    assert request.extensions == (
        ExtensionOffer("permessage-deflate", (("client_max_window_bits", None),)),
        ExtensionOffer("foo", ()),
    )
    assert refused([*BASE, (b"sec-websocket-extensions", b"permessage-deflate; =1")]).status == 400


def test_request_through_covetd_http_parser_hands_back_the_first_frame() -> None:
    # The engine's path: RequestParser → raw headers → parse_upgrade_request; the bytes
    # after the head (a first frame sent early) are handed back for the WebSocket.
    raw = (
        b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: " + KEY + b"\r\n"
        b"Sec-WebSocket-Version: 13\r\n"
        b'Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits="10"\r\n\r\n'
    )
    early_frame = b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"

    class Switching(Recorder):
        def on_request(self, head: RequestHead) -> None:
            super().on_request(head)
            head.switching = True  # type: ignore[attr-defined]

    recorder = Switching()
    tail = RequestParser(recorder, Limits()).feed(raw + early_frame)
    assert tail == early_frame
    head = recorder.requests[0].head
    request = parse_upgrade_request(head.method, head.http_version, head.raw_headers)
    assert request.extensions == (
        ExtensionOffer("permessage-deflate", (("server_max_window_bits", "10"),)),
    )


# -- the list syntax ---------------------------------------------------------------------


def test_extension_list_syntax() -> None:
    values = [
        b'a; x=1; y="two"; z, b ;c = "3" , ,d',
        b"e",
    ]
    assert parse_extensions(values) == [
        ExtensionOffer("a", (("x", "1"), ("y", "two"), ("z", None))),
        ExtensionOffer("b", (("c", "3"),)),
        ExtensionOffer("d", ()),
        ExtensionOffer("e", ()),
    ]
    assert parse_extensions([b'a; x="\\1\\0"']) == [ExtensionOffer("a", (("x", "10"),))]


@pytest.mark.parametrize(
    "value",
    [
        b"a;",
        b"a; x=",
        b'a; x="1 2"',
        b'a; x="unterminated',
        b"a b",
        b"a; x=1 y",
        b"(a)",
        b'a; x=""',
    ],
)
def test_malformed_extension_lists(value: bytes) -> None:
    with pytest.raises(ValueError):
        parse_extensions([value])


def test_token_lists() -> None:
    assert parse_token_list([b" a ,b,,\tc ", b"d"]) == ["a", "b", "c", "d"]
    with pytest.raises(ValueError):
        parse_token_list([b"a b"])


# -- the 101 head -------------------------------------------------------------------------------


def test_accept_response_for_the_rfc_example() -> None:
    request = parse([*BASE, (b"sec-websocket-protocol", b"chat, superchat")])
    head = accept_response(request, subprotocol="chat")
    assert head == (
        b"HTTP/1.1 101 Switching Protocols\r\n"
        b"upgrade: websocket\r\n"
        b"connection: Upgrade\r\n"
        b"sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
        b"sec-websocket-protocol: chat\r\n"
        b"\r\n"
    )


def test_accept_response_with_extensions_extra_headers_and_preamble() -> None:
    head = accept_response(
        parse(BASE),
        extensions=[b"permessage-deflate; server_max_window_bits=12"],
        extra_headers=[(b"set-cookie", b"a=1"), ("X-Trace", "abc")],
        preamble=b"server: covetd\r\ndate: Thu, 01 Jan 2026 00:00:00 GMT\r\n",
    )
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 101 Switching Protocols"
    assert b"server: covetd" in lines
    assert b"sec-websocket-extensions: permessage-deflate; server_max_window_bits=12" in lines
    assert b"set-cookie: a=1" in lines
    assert b"x-trace: abc" in lines
    assert head.endswith(b"\r\n\r\n") and head.count(b"\r\n\r\n") == 1


def test_subprotocol_must_have_been_offered() -> None:
    with pytest.raises(ValueError):
        accept_response(parse(BASE), subprotocol="chat")


@pytest.mark.parametrize(
    "header",
    [
        (b"x-a", b"1\r\nx-injected: 2"),
        (b"x-a", b"1\n"),
        (b"x-a", b"\0"),
        (b"bad name", b"1"),
        (b"x-a:", b"1"),
        (b"", b"1"),
        ("Sec-WebSocket-Accept", "forged"),
        (b"upgrade", b"h2c"),
        (b"content-length", b"0"),
        (b"sec-websocket-protocol", b"chat"),
    ],
)
def test_unsafe_or_reserved_extra_headers_are_refused(
    header: tuple[bytes | str, bytes | str],
) -> None:
    with pytest.raises(ValueError):
        accept_response(parse(BASE), extra_headers=[header])
