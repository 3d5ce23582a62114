"""permessage-deflate (RFC 7692) through a real server (issue 5, deliverable 1):
negotiated when the client offers it and ``websocket.compression`` is on (the default),
never otherwise; compressed messages round-trip intact and are small on the wire.
"""

from __future__ import annotations

from typing import Any

import pytest
from support.process import Covetd
from wsclients import WsprotoClient, deflate_offer, frame, ws_connect
from wsproto.extensions import PerMessageDeflate

BIG = 300_000  # bytes of a compressible text (repeated words)


@pytest.fixture(scope="module")
def server(module_covetd: Any) -> Covetd:
    server: Covetd = module_covetd("ws_covet:app", {"websocket": {"ping_interval": 0}})
    return server


@pytest.fixture(scope="module")
def uncompressed(module_covetd: Any) -> Covetd:
    config = {"websocket": {"ping_interval": 0, "compression": False}}
    server: Covetd = module_covetd("ws_covet:app", config)
    return server


def compressible(size: int) -> str:
    return ("covetd " * (size // 7 + 1))[:size]


def test_negotiated_with_the_websockets_client(server: Covetd) -> None:
    with ws_connect(server, "/echo") as client:  # websockets offers deflate by default
        header = client.response.headers.get("Sec-WebSocket-Extensions", "")
        assert header.startswith("permessage-deflate"), header
        text = compressible(BIG)
        client.send(text)
        assert client.recv(timeout=20) == text
        blob = bytes(BIG)  # compressible bytes too
        client.send(blob)
        assert client.recv(timeout=20) == blob


def test_not_negotiated_when_the_client_does_not_offer_it(server: Covetd) -> None:
    with ws_connect(server, "/echo", compression=None) as client:
        assert "Sec-WebSocket-Extensions" not in client.response.headers
        client.send("plain")
        assert client.recv(timeout=10) == "plain"


def test_compressed_on_the_wire_both_ways(server: Covetd) -> None:
    """A large compressible message costs a small fraction of its size each way."""
    with WsprotoClient.open(server.host, server.port, "/echo", extensions=deflate_offer()) as c:
        assert c.accepted is not None
        assert [type(e) for e in c.accepted.extensions] == [PerMessageDeflate]
        text = compressible(BIG)
        sent, received = c.bytes_sent, c.bytes_received
        c.send_text(text)
        assert c.receive(timeout=20) == text
        assert c.bytes_sent - sent < BIG // 20
        assert c.bytes_received - received < BIG // 20
        # Context takeover: a second identical message compresses to almost nothing.
        sent, received = c.bytes_sent, c.bytes_received
        c.send_text(text)
        assert c.receive(timeout=20) == text
        assert c.bytes_received - received < BIG // 20


def test_server_generated_message_is_compressed(server: Covetd) -> None:
    with WsprotoClient.open(server.host, server.port, "/big", extensions=deflate_offer()) as c:
        before = c.bytes_received
        c.send_text(str(BIG))
        assert c.receive(timeout=20) == compressible(BIG)
        assert c.bytes_received - before < BIG // 20


@pytest.mark.parametrize(
    "offer",
    [
        {"client_no_context_takeover": True, "server_no_context_takeover": True},
        {"client_max_window_bits": 9, "server_max_window_bits": 9},
        {"server_max_window_bits": 15},
    ],
)
def test_negotiated_parameters_are_honoured(server: Covetd, offer: dict[str, Any]) -> None:
    """wsproto enforces what it negotiated: a server breaking the agreed window size or
    context takeover would corrupt these messages on the client's side."""
    deflate = PerMessageDeflate(**offer)
    with WsprotoClient.open(server.host, server.port, "/echo", extensions=[deflate]) as c:
        assert c.accepted is not None and c.accepted.extensions, "deflate refused"
        for size in (10, BIG, 70_000, BIG):
            text = compressible(size)
            c.send_text(text)
            assert c.receive(timeout=20) == text
        c.close()
        assert c.wait_closed().code == 1000


def test_not_negotiated_when_compression_is_off(uncompressed: Covetd) -> None:
    with ws_connect(uncompressed, "/echo") as client:
        assert "Sec-WebSocket-Extensions" not in client.response.headers
        text = compressible(BIG)
        client.send(text)
        assert client.recv(timeout=20) == text
    with WsprotoClient.open(
        uncompressed.host, uncompressed.port, "/echo", extensions=deflate_offer()
    ) as c:
        assert c.accepted is not None and c.accepted.extensions == []
        before = c.bytes_received
        c.send_text(text)
        assert c.receive(timeout=20) == text
        assert c.bytes_received - before >= BIG  # sent as is


def test_a_compressed_frame_without_deflate_negotiated_is_1002(uncompressed: Covetd) -> None:
    """RSV1 means "compressed" only when permessage-deflate was agreed (§5.2)."""
    with WsprotoClient.open(uncompressed.host, uncompressed.port, "/echo") as c:
        c.write(frame(0x1, b"\xf2\x48\xcd\xc9\xc9\x07\x00", rsv1=True))
        assert c.wait_closed().code == 1002
