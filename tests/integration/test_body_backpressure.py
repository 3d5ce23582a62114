"""Reading is bounded too (STYLE habit 7): while a handler does not read the request
body, the server stops reading it from the socket once the unread part passes its
high-water mark, so a client cannot push an unbounded body into server memory."""

from __future__ import annotations

import time

import pytest
from support.probe import (
    assert_closed_without_more,
    fetch,
    read_response,
    request,
    wait_for_state,
)
from support.rawhttp import RawConnection

TOTAL = 64 * 1024 * 1024
# In flight while nothing reads: the server's 256 KiB high-water mark plus the kernel's
# socket buffers on both sides (a few MiB on loopback). A quarter of the body is a
# generous bound; without backpressure the whole body is accepted at once.
BOUND = TOTAL // 4
PIECE = b"z" * 65536


@pytest.fixture
def server(covetd):
    # A wedged connection must not hold up the server's stop: graceful_timeout 1 s.
    config = {"http": {"max_body_size": "1GiB"}, "server": {"graceful_timeout": 1}}
    return covetd("engine_probe:app", config)


def push_until_stalled(conn: RawConnection, limit: int, stall: float = 0.5) -> int:
    """Send body pieces until none fits for ``stall`` s (or ``limit`` bytes went)."""
    sent = 0
    conn.sock.settimeout(stall)
    try:
        while sent < limit:
            sent += conn.sock.send(PIECE[: min(len(PIECE), limit - sent)])
    except TimeoutError:
        pass
    finally:
        conn.sock.settimeout(10.0)
    return sent


def test_unread_request_body_is_not_buffered_without_bound(server) -> None:
    with RawConnection(server.host, server.port, timeout=10.0) as conn:
        conn.send(f"POST /gate/bb HTTP/1.1\r\nHost: x\r\nContent-Length: {TOTAL}\r\n\r\n".encode())
        wait_for_state(server, "bb", "gated")
        start = time.monotonic()
        sent = push_until_stalled(conn, TOTAL)
        assert sent < BOUND, f"{sent} bytes accepted while the handler read nothing"
        assert time.monotonic() - start < 8

        assert fetch(server, request("/open/bb")).body == b"open"
        remaining = TOTAL - sent
        while remaining:
            remaining -= conn.sock.send(PIECE[: min(len(PIECE), remaining)])
        response = read_response(conn)
    assert (response.status, response.body) == (200, str(TOTAL).encode())


def test_a_handler_that_ignores_a_large_body_does_not_wedge_the_connection(server) -> None:
    # Reading is paused for the unread body when the handler answers without reading
    # it. Then the server must either read and drop the rest of the body and serve the
    # next request, or close after the response (saying so): never stop reading for good.
    total = TOTAL  # well above what the kernel's socket buffers hold on loopback
    with RawConnection(server.host, server.port, timeout=10.0) as conn:
        conn.send(
            f"POST /gate/ig?read=0 HTTP/1.1\r\nHost: x\r\nContent-Length: {total}\r\n\r\n".encode()
        )
        wait_for_state(server, "ig", "gated")
        sent = push_until_stalled(conn, total)
        assert sent < total, "reading never paused"
        assert fetch(server, request("/open/ig")).body == b"open"
        response = read_response(conn)
        assert (response.status, response.body) == (200, b"ignored")
        if response.header("connection") == "close":
            assert_closed_without_more(conn)
            return
        conn.sock.settimeout(3.0)
        try:
            conn.send(b"z" * (total - sent) + request("/"))
        except TimeoutError:
            pytest.fail("the server stopped reading the connection for good")
        assert read_response(conn).body == b"hello"
