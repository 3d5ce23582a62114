"""Cross-checks against an independent implementation: wsproto as a real client.

The client's handshake goes through covetd's HTTP/1.1 parser and the handshake module;
its frames (masked, fragmented, compressed) through ``Connection.receive_data``; what
covetd writes goes back through wsproto, which refuses anything RFC 6455 forbids a
server to send (masked frames, bad lengths, bad close codes, bad deflate data).
"""

from __future__ import annotations

import itertools
import random

import pytest
from support.h1 import Recorder
from ws_support import frame
from wsproto import ConnectionState, ConnectionType, WSConnection
from wsproto import events as wp
from wsproto.extensions import PerMessageDeflate as ClientDeflate

from covetd.app.head import RequestHead
from covetd.engine.h1.limits import Limits
from covetd.engine.h1.parser import RequestParser
from covetd.engine.ws import (
    BytesMessage,
    CloseReceived,
    Connection,
    ConnectionFailed,
    DeflateConfig,
    Event,
    Ping,
    Pong,
    State,
    TextMessage,
    accept_response,
    negotiate_deflate,
    parse_upgrade_request,
)


class Switching(Recorder):
    """Takes every upgrade, as the engine does for a WebSocket route."""

    def on_request(self, head: RequestHead) -> None:
        super().on_request(head)
        head.switching = True  # type: ignore[attr-defined]


class Pair:
    """A wsproto client and a covetd server connection, wired by hand."""

    def __init__(
        self,
        client_deflate: ClientDeflate | None = None,
        config: DeflateConfig | None = None,
        subprotocols: tuple[str, ...] = (),
        choose: str | None = None,
    ) -> None:
        self.client = WSConnection(ConnectionType.CLIENT)
        request_bytes = self.client.send(
            wp.Request(
                host="example.com",
                target="/ws",
                extensions=[client_deflate] if client_deflate else [],
                subprotocols=list(subprotocols),
            )
        )
        recorder = Switching()
        assert RequestParser(recorder, Limits()).feed(request_bytes) == b""
        head = recorder.requests[0].head
        request = parse_upgrade_request(head.method, head.http_version, head.raw_headers)
        self.deflate = negotiate_deflate(request.extensions, config) if config else None
        response = accept_response(
            request,
            subprotocol=choose,
            extensions=[self.deflate.response_header] if self.deflate else [],
        )
        self.server = Connection(max_message_size=4 << 20, deflate=self.deflate)
        [accepted] = self.to_client(response)
        assert isinstance(accepted, wp.AcceptConnection)
        self.accepted = accepted

    def to_server(self, *events: wp.Event) -> list[Event]:
        return self.server.receive_data(b"".join(self.client.send(e) for e in events))

    def to_client(self, data: bytes) -> list[wp.Event]:
        self.client.receive_data(data)
        return list(self.client.events())

    def client_messages(self, data: bytes) -> list[str | bytes]:
        """Whole messages wsproto assembled from ``data`` (it reports frames in pieces)."""
        messages: list[str | bytes] = []
        partial: list[wp.Message] = []
        for event in self.to_client(data):
            assert isinstance(event, wp.Message), event
            partial.append(event)
            if event.message_finished:
                empty = "" if isinstance(event, wp.TextMessage) else b""
                messages.append(empty.join(part.data for part in partial))
                partial = []
        assert not partial
        return messages


def payloads() -> list[str | bytes]:
    rng = random.Random(5)
    text = "WebSocket ✓ κόσμε 𝄞 "
    return [
        "",
        b"",
        "a",
        text * 2,
        text * 10_000,  # ~250 KB of mixed-width UTF-8
        bytes(125),
        rng.randbytes(126),
        rng.randbytes(65535),
        rng.randbytes(65536),
        bytes(300_000),
        b'{"room":"lobby","user":"alice","text":"hello"}' * 50,
    ]


def echo(pair: Pair, message: str | bytes) -> None:
    """Client → server → client, checking both sides saw the message intact."""
    [event] = pair.to_server(wp.Message(data=message))
    assert event == (TextMessage(message) if isinstance(message, str) else BytesMessage(message))
    out = (
        pair.server.send_text(message)
        if isinstance(message, str)
        else pair.server.send_bytes(message)
    )
    assert pair.client_messages(out) == [message]


# -- without compression --------------------------------------------------------------------


def test_handshake_with_a_subprotocol() -> None:
    pair = Pair(subprotocols=("v2.chat", "v1.chat"), choose="v1.chat")
    assert pair.accepted.subprotocol == "v1.chat"
    assert pair.accepted.extensions == []
    assert pair.client.state is ConnectionState.OPEN


def test_messages_both_ways() -> None:
    pair = Pair()
    for message in payloads():
        echo(pair, message)


def test_fragmented_client_messages_with_pings_between_fragments() -> None:
    pair = Pair()
    events = pair.to_server(
        wp.TextMessage(data="κό", message_finished=False),
        wp.Ping(payload=b"1"),
        wp.TextMessage(data="σμε", message_finished=False),
        wp.TextMessage(data="", message_finished=True),
        wp.BytesMessage(data=b"\x00" * 70000, message_finished=False),
        wp.Pong(payload=b"2"),
        wp.BytesMessage(data=b"\x01", message_finished=True),
    )
    assert events == [
        Ping(b"1"),
        TextMessage("κόσμε"),
        Pong(b"2"),
        BytesMessage(b"\x00" * 70000 + b"\x01"),
    ]


def test_pings_both_ways() -> None:
    pair = Pair()
    [ping] = pair.to_server(wp.Ping(payload=b"client"))
    assert ping == Ping(b"client")
    [pong] = pair.to_client(pair.server.send_pong(ping.payload))
    assert pong == wp.Pong(payload=b"client")
    [client_ping] = pair.to_client(pair.server.send_ping(b"server"))
    assert isinstance(client_ping, wp.Ping)
    assert pair.to_server(client_ping.response()) == [Pong(b"server")]


def test_client_closes_first() -> None:
    pair = Pair()
    assert pair.to_server(wp.CloseConnection(code=4000, reason="done")) == [
        CloseReceived(4000, "done")
    ]
    [answer] = pair.to_client(pair.server.send_close())
    assert isinstance(answer, wp.CloseConnection)
    assert answer.code == 4000  # echoed
    assert pair.client.state is ConnectionState.CLOSED
    assert pair.server.state is State.CLOSED


def test_server_closes_first() -> None:
    pair = Pair()
    [close] = pair.to_client(pair.server.send_close(1001, "going away"))
    assert isinstance(close, wp.CloseConnection)
    assert (close.code, close.reason) == (1001, "going away")
    assert pair.to_server(close.response()) == [CloseReceived(1001, "going away")]
    assert pair.server.state is State.CLOSED


def test_protocol_failure_close_frame_is_read_by_the_client() -> None:
    pair = Pair()
    events = pair.server.receive_data(frame(0x1, b"\xce\xba\xff"))
    assert isinstance(events[-1], ConnectionFailed)
    [close] = pair.to_client(events[-1].close_frame)
    assert isinstance(close, wp.CloseConnection)
    assert close.code == 1007


def test_long_close_reason_is_cut_to_a_valid_frame() -> None:
    pair = Pair()
    [close] = pair.to_client(pair.server.send_close(1000, "ü" * 200))
    assert isinstance(close, wp.CloseConnection)
    assert close.reason == "ü" * 61


# -- with permessage-deflate negotiated between the two ----------------------------------------

CLIENT_OFFERS = [
    {
        "client_no_context_takeover": client_nct,
        "server_no_context_takeover": server_nct,
        "client_max_window_bits": client_bits,
        "server_max_window_bits": server_bits,
    }
    for client_nct, server_nct, client_bits, server_bits in itertools.product(
        (False, True), (False, True), (9, 15), (9, 12, 15)
    )
]
CONFIGS = [
    DeflateConfig(min_size=0, max_window_bits=15, memory_level=8),
    DeflateConfig(min_size=0, max_window_bits=10, server_no_context_takeover=True),
    DeflateConfig(min_size=0, max_window_bits=12, client_no_context_takeover=True),
]


@pytest.mark.parametrize("config", CONFIGS, ids=["15", "10-server-nct", "12-client-nct"])
@pytest.mark.parametrize("offer", CLIENT_OFFERS, ids=lambda o: "-".join(str(v) for v in o.values()))
def test_deflate_negotiated_with_wsproto(
    offer: dict[str, int | bool], config: DeflateConfig
) -> None:
    pair = Pair(ClientDeflate(**offer), config)
    assert pair.deflate is not None
    [client_side] = pair.accepted.extensions
    assert isinstance(client_side, ClientDeflate)
    params = pair.deflate.params
    # Both sides agree on what was negotiated.
    assert client_side.server_no_context_takeover == params.server_no_context_takeover
    assert client_side.client_no_context_takeover == params.client_no_context_takeover
    assert client_side.server_max_window_bits == (params.server_max_window_bits or 15)
    assert client_side.client_max_window_bits == (params.client_max_window_bits or 15)
    assert params.server_max_window_bits is not None  # wsproto always offers it
    assert params.server_max_window_bits <= int(offer["server_max_window_bits"])
    repeated = b'{"room":"lobby","user":"alice","text":"hello"}'
    for message in [*payloads()[:8], repeated, repeated, "again ✓" * 300, "again ✓" * 300]:
        echo(pair, message)
    pair.to_server(wp.CloseConnection(code=1000))
    assert pair.server.state is State.CLOSE_RECEIVED


def test_compressed_frames_really_are_compressed() -> None:
    pair = Pair(ClientDeflate(), DeflateConfig(min_size=0))
    data = pair.server.send_text("x" * 10_000)
    assert data[0] == 0xC1  # FIN, RSV1, text
    assert len(data) < 200
    assert pair.client_messages(data) == ["x" * 10_000]
    wire = pair.client.send(wp.Message(data="y" * 10_000))
    assert len(wire) < 200
    assert pair.server.receive_data(wire) == [TextMessage("y" * 10_000)]


def test_fragmented_compressed_client_message() -> None:
    pair = Pair(ClientDeflate(), DeflateConfig(min_size=0))
    events = pair.to_server(
        wp.TextMessage(data="part one, ", message_finished=False),
        wp.Ping(payload=b"between"),
        wp.TextMessage(data="part two ✓", message_finished=True),
    )
    assert events == [Ping(b"between"), TextMessage("part one, part two ✓")]


def test_compressed_message_over_the_limit_is_1009_for_the_client() -> None:
    pair = Pair(ClientDeflate(), DeflateConfig(min_size=0))
    pair.server = Connection(max_message_size=100_000, deflate=pair.deflate)
    events = pair.to_server(wp.Message(data=bytes(100_001)))  # ~100 bytes on the wire
    assert isinstance(events[-1], ConnectionFailed)
    [close] = pair.to_client(events[-1].close_frame)
    assert isinstance(close, wp.CloseConnection)
    assert close.code == 1009
