"""Limits and protocol errors on a live connection (issue 5, deliverables 1 and 4): each
ends in the close code the RFC names, sent by the server, then EOF.

``websocket.max_message_size`` → 1009 (also for a small compressed message that
inflates past the limit: no zip bombs); ``websocket.message_rate`` → 1008; a frame
RFC 6455 forbids → 1002; invalid UTF-8 in a text message → 1007. What stays within the
limits goes through.
"""

from __future__ import annotations

import time
import zlib
from typing import Any

import pytest
from support.process import Covetd
from wsclients import WsprotoClient, deflate_offer, frame
from wsproto import events as wp

LIMIT = 64 * 1024
RATE = 20


@pytest.fixture(scope="module")
def server(module_covetd: Any) -> Covetd:
    config = {"websocket": {"ping_interval": 0, "max_message_size": LIMIT, "message_rate": RATE}}
    server: Covetd = module_covetd("ws_covet:app", config)
    return server


@pytest.fixture(scope="module")
def unlimited_rate(module_covetd: Any) -> Covetd:
    config = {"websocket": {"ping_interval": 0, "max_message_size": LIMIT}}
    server: Covetd = module_covetd("ws_covet:app", config)
    return server


def open_echo(server: Covetd, **kwargs: Any) -> WsprotoClient:
    return WsprotoClient.open(server.host, server.port, "/echo", **kwargs)


# -- max_message_size ---------------------------------------------------------------------


def test_a_message_of_exactly_the_limit_goes_through(server: Covetd) -> None:
    with open_echo(server) as client:
        client.send_bytes(b"\x07" * LIMIT)
        assert client.receive() == b"\x07" * LIMIT
        client.send_text("é" * (LIMIT // 2))  # 2 bytes each in UTF-8: exactly the limit
        assert client.receive() == "é" * (LIMIT // 2)


@pytest.mark.parametrize("size", [LIMIT + 1, 4 * LIMIT])
def test_a_larger_message_is_closed_1009(server: Covetd, size: int) -> None:
    with open_echo(server) as client:
        client.send_bytes(b"x" * size)
        closed = client.wait_closed()
    assert (closed.code, closed.eof) == (1009, True)
    assert closed.reason == f"message over {LIMIT} bytes"


def test_a_fragmented_message_counts_as_a_whole(server: Covetd) -> None:
    """Each fragment is small; together they pass the limit."""
    with open_echo(server) as client:
        piece = b"f" * (LIMIT // 4)
        for _ in range(4):
            client.write(client.conn.send(wp.BytesMessage(data=piece, message_finished=False)))
        client.write(client.conn.send(wp.BytesMessage(data=b"!", message_finished=True)))
        closed = client.wait_closed()
    assert closed.code == 1009


def test_a_compressed_message_that_inflates_past_the_limit_is_1009(server: Covetd) -> None:
    """A few KiB on the wire, 64 times the limit once inflated."""
    with open_echo(server, extensions=deflate_offer()) as client:
        assert client.accepted is not None and client.accepted.extensions, "no deflate"
        sent_before = client.bytes_sent
        client.send_bytes(bytes(64 * LIMIT))
        assert client.bytes_sent - sent_before < LIMIT // 4  # it really was small
        closed = client.wait_closed()
    assert closed.code == 1009


def test_hand_deflated_bomb_is_1009(server: Covetd) -> None:
    """Raw deflate data (RSV1 set) built here, not by a client library."""
    with open_echo(server, extensions=deflate_offer()) as client:
        compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
        data = compressor.compress(bytes(32 << 20)) + compressor.flush(zlib.Z_SYNC_FLUSH)
        data = data[:-4]  # RFC 7692 §7.2.1: the 00 00 ff ff tail is removed
        assert len(data) < 64 * 1024
        client.write(frame(0x2, data, rsv1=True))
        closed = client.wait_closed()
    assert closed.code == 1009


# -- message_rate -------------------------------------------------------------------------


def test_a_burst_above_the_rate_is_closed_1008(server: Covetd) -> None:
    with open_echo(server) as client:
        client.send_texts(f"m{i}" for i in range(RATE * 5))  # one write: one burst
        echoed = []
        event = client.next_event()
        while isinstance(event, wp.TextMessage):
            echoed.append(event.data)
            event = client.next_event()
        assert isinstance(event, wp.CloseConnection), event
        assert (event.code, event.reason) == (1008, "message rate exceeded")
    # Those within the allowance may be echoed if the burst was read in pieces (the
    # session ends at once when it is read in one go), never more, and in order.
    assert echoed == [f"m{i}" for i in range(len(echoed))]
    assert len(echoed) <= RATE + 1


def test_a_client_within_the_rate_stays_open(server: Covetd) -> None:
    """Half the rate, spread over more than a second (well over the burst allowance in
    total): every message is served."""
    count = RATE + RATE // 2
    with open_echo(server) as client:
        for i in range(count):
            client.send_text(f"paced {i}")
            assert client.receive() == f"paced {i}"
            # The client's pace (the point of the test, not synchronisation): a pause
            # after each answer, so a stalled test process never catches up in a burst.
            time.sleep(2 / RATE)
        client.close()
        assert client.wait_closed().code == 1000


def test_no_rate_limit_by_default(unlimited_rate: Covetd) -> None:
    with open_echo(unlimited_rate) as client:
        client.send_texts(f"m{i}" for i in range(RATE * 5))
        assert [client.receive() for _ in range(RATE * 5)] == [f"m{i}" for i in range(RATE * 5)]


# -- protocol errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (frame(0x1, b"unmasked", masked=False), 1002),  # clients must mask (§5.1)
        (frame(0x3, b"reserved opcode"), 1002),  # §5.2
        (frame(0x1, b"rsv2", rsv2=True), 1002),  # no extension defines RSV2
        (frame(0x9, b"p" * 126), 1002),  # control frames carry <= 125 bytes (§5.5)
        (frame(0x9, b"fragmented ping", fin=False), 1002),
        (frame(0x0, b"continuation of nothing"), 1002),
        (frame(0x1, b"\xff\xfe invalid utf-8"), 1007),  # §8.1
        (frame(0x1, b"truncated \xe2\x82"), 1007),
        (frame(0x8, b"\x03\xe8\xff"), 1007),  # a close reason must be UTF-8 too
        (frame(0x8, (999).to_bytes(2, "big")), 1002),  # not a valid close code
    ],
)
def test_protocol_errors_close_with_their_code(server: Covetd, raw: bytes, code: int) -> None:
    with open_echo(server) as client:
        client.write(raw)
        closed = client.wait_closed()
    assert (closed.code, closed.eof) == (code, True)


def test_invalid_utf8_split_across_fragments_is_1007(server: Covetd) -> None:
    """The first fragment ends inside a valid sequence; the second does not finish it."""
    with open_echo(server) as client:
        client.write(frame(0x1, b"ok so far \xe2\x82", fin=False))
        client.write(frame(0x0, b"\x28 broken", fin=True))
        closed = client.wait_closed()
    assert closed.code == 1007


def test_valid_utf8_split_across_fragments_goes_through(server: Covetd) -> None:
    with open_echo(server) as client:
        client.write(frame(0x1, b"euro: \xe2\x82", fin=False))
        client.write(frame(0x0, b"\xac!", fin=True))
        assert client.receive() == "euro: €!"


def test_ping_from_the_client_is_answered_even_between_fragments(server: Covetd) -> None:
    with open_echo(server) as client:
        client.write(frame(0x1, b"one ", fin=False))
        client.write(frame(0x9, b"are you there"))
        pong = client.next_event()
        assert isinstance(pong, wp.Pong) and pong.payload == b"are you there"
        client.write(frame(0x0, b"message", fin=True))
        assert client.receive() == "one message"
