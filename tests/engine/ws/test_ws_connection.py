"""``Connection``: the close handshake's state table, failures, and what send_* write."""

from __future__ import annotations

import zlib

import pytest
from ws_support import (
    BINARY,
    CLOSE,
    CONTINUATION,
    PING,
    TEXT,
    close_payload,
    failure,
    frame,
    server_frames,
)

from covetd.engine.ws import (
    BytesMessage,
    CloseReceived,
    Connection,
    ConnectionFailed,
    DeflateParams,
    LocalProtocolError,
    PerMessageDeflate,
    Ping,
    State,
    TextMessage,
)
from covetd.engine.ws.deflate import DeflateConfig


def test_messages_and_control_frames_become_events() -> None:
    conn = Connection()
    data = frame(TEXT, b"hi") + frame(BINARY, b"\x00") + frame(PING, b"?")
    assert conn.receive_data(data) == [TextMessage("hi"), BytesMessage(b"\x00"), Ping(b"?")]
    assert conn.state is State.OPEN
    assert conn.close_code is None


def test_send_writes_one_unmasked_frame_per_message() -> None:
    conn = Connection()
    assert server_frames(conn.send_text("h€")) == [(True, 0, TEXT, "h€".encode())]
    assert server_frames(conn.send_bytes(b"\x01" * 70000)) == [(True, 0, BINARY, b"\x01" * 70000)]
    assert conn.send_ping(b"p") == b"\x89\x01p"
    assert conn.send_pong(b"p") == b"\x8a\x01p"


# -- the peer closes first --------------------------------------------------------------------


def test_peer_close_is_answered_with_its_code_echoed() -> None:
    conn = Connection()
    events = conn.receive_data(frame(CLOSE, close_payload(4001, b"bye")))
    assert events == [CloseReceived(4001, "bye")]
    assert conn.state is State.CLOSE_RECEIVED
    assert (conn.close_code, conn.close_reason) == (4001, "bye")
    answer = conn.send_close()
    assert server_frames(answer) == [(True, 0, CLOSE, close_payload(4001))]
    assert conn.state is State.CLOSED
    assert conn.send_close() == b""


def test_close_without_a_code_is_1005_and_answered_without_one() -> None:
    conn = Connection()
    assert conn.receive_data(frame(CLOSE)) == [CloseReceived(1005, "")]
    assert conn.send_close() == b"\x88\x00"
    assert conn.state is State.CLOSED


def test_answer_may_name_its_own_code() -> None:
    conn = Connection()
    conn.receive_data(frame(CLOSE, close_payload(1000)))
    assert server_frames(conn.send_close(1001, "restarting")) == [
        (True, 0, CLOSE, close_payload(1001, b"restarting"))
    ]


def test_data_after_the_peer_close_is_ignored() -> None:
    conn = Connection()
    conn.receive_data(frame(CLOSE, close_payload(1000)))
    assert conn.receive_data(frame(TEXT, b"late")) == []
    assert conn.receive_data(b"\xff\xff\xff") == []
    conn.send_close()
    assert conn.receive_data(frame(TEXT, b"later")) == []


def test_messages_may_still_be_sent_before_answering_a_close() -> None:
    conn = Connection()
    conn.receive_data(frame(CLOSE, close_payload(1000)))
    assert conn.send_text("last words")
    conn.send_close()
    with pytest.raises(LocalProtocolError):
        conn.send_text("too late")


# -- we close first ---------------------------------------------------------------------------


def test_our_close_then_the_peers() -> None:
    conn = Connection()
    assert server_frames(conn.send_close(1001, "going away")) == [
        (True, 0, CLOSE, close_payload(1001, b"going away"))
    ]
    assert conn.state is State.CLOSING
    assert (conn.close_code, conn.close_reason) == (1001, "going away")
    # Messages and pings still arriving are read, not reported.
    assert conn.receive_data(frame(TEXT, b"in flight") + frame(PING, b"x")) == []
    assert conn.receive_data(frame(CLOSE, close_payload(1001))) == [CloseReceived(1001, "")]
    assert conn.state is State.CLOSED
    assert conn.close_code == 1001
    assert conn.send_close() == b""


def test_default_close_code_is_1000() -> None:
    assert Connection().send_close() == b"\x88\x02\x03\xe8"


def test_nothing_but_close_may_be_sent_after_our_close() -> None:
    conn = Connection()
    conn.send_close()
    with pytest.raises(LocalProtocolError):
        conn.send_text("x")
    for send in (conn.send_bytes, conn.send_ping, conn.send_pong):
        with pytest.raises(LocalProtocolError):
            send(b"x")
    assert conn.send_close(1000) == b""


def test_protocol_error_while_closing_ends_without_a_second_close_frame() -> None:
    conn = Connection()
    conn.send_close()
    events = conn.receive_data(frame(TEXT, b"\xff"))
    assert events == [ConnectionFailed(1007, "invalid UTF-8 in a text message", b"")]
    assert conn.state is State.CLOSED


def test_unsendable_close_code_leaves_the_state_alone() -> None:
    conn = Connection()
    with pytest.raises(ValueError):
        conn.send_close(1006)
    assert conn.state is State.OPEN


# -- failures ------------------------------------------------------------------------------------


def test_protocol_error_fails_the_connection_with_its_close_frame() -> None:
    conn = Connection()
    events = conn.receive_data(frame(TEXT, b"ok") + frame(CONTINUATION, b"x"))
    assert events[0] == TextMessage("ok")
    failed = failure(events)
    assert failed.code == 1002
    [close] = server_frames(failed.close_frame)
    assert close.opcode == CLOSE
    assert close.payload == close_payload(1002, failed.reason.encode())
    assert conn.state is State.CLOSED
    assert (conn.close_code, conn.close_reason) == (1002, failed.reason)
    assert conn.receive_data(frame(TEXT, b"more")) == []
    assert conn.send_close() == b""


def test_message_too_big_fails_with_1009() -> None:
    conn = Connection(max_message_size=10)
    assert failure(conn.receive_data(frame(BINARY, bytes(11))[:2])).code == 1009
    assert conn.close_code == 1009


def test_invalid_max_message_size() -> None:
    with pytest.raises(ValueError):
        Connection(max_message_size=0)


# -- compression when negotiated -------------------------------------------------------------


def test_messages_under_min_size_are_sent_uncompressed() -> None:
    deflate = PerMessageDeflate(DeflateParams(), DeflateConfig(min_size=100))
    conn = Connection(deflate=deflate)
    [small] = server_frames(conn.send_text("x" * 99))
    assert small.rsv == 0 and small.payload == b"x" * 99
    [large] = server_frames(conn.send_text("x" * 100))
    assert large.rsv == 0x40
    assert zlib.decompressobj(-15).decompress(large.payload + b"\x00\x00\xff\xff") == b"x" * 100
    [control] = server_frames(conn.send_ping(b"y" * 120))
    assert control.rsv == 0  # control frames are never compressed (RFC 7692 §6.1)
