"""Connection timeouts on the wire (``http.*_timeout`` = 1 s).

The server checks deadlines on a 0.5 s tick, so "within T + 1 s" is the bound asserted
for a deadline of T. Clients that trickle bytes are paced by blocking reads with a
socket timeout (which also notice the server's answer), never by sleeps.
"""

from __future__ import annotations

import time

import pytest
from support.probe import nothing_arrives, read_response, request
from support.rawhttp import RawConnection

TIMEOUTS = {"header_timeout": 1, "keepalive_timeout": 1, "body_timeout": 1}
SLACK = 1.0  # tick (0.5 s) + scheduling


@pytest.fixture(scope="module")
def server(module_covetd):
    return module_covetd("engine_probe:app", {"http": TIMEOUTS})


def trickle(conn: RawConnection, data: bytes, pace: float, limit: float) -> float | None:
    """Send ``data`` one byte every ``pace`` s until the server answers or closes; the
    seconds that took, or None if ``limit`` s passed or the data ran out first."""
    start = time.monotonic()
    for i in range(len(data)):
        try:
            conn.send(data[i : i + 1])
        except (BrokenPipeError, ConnectionResetError):
            return time.monotonic() - start
        if not nothing_arrives(conn, pace) or time.monotonic() - start > limit:
            break
    elapsed = time.monotonic() - start
    if conn.buffer or conn.is_closed(0.05):
        return elapsed
    return None


def assert_timed_out_with_408_or_silence(conn: RawConnection) -> None:
    """What a timed-out connection may get: nothing, or a 408 that closes. Then EOF."""
    assert conn.is_closed(2.0), "still open after the timeout"
    if conn.buffer:
        head = conn.buffer.split(b"\r\n\r\n", 1)[0].lower()
        assert head.startswith(b"http/1.1 408 "), conn.buffer
        assert b"\r\nconnection: close" in head, conn.buffer


# -- header_timeout -------------------------------------------------------------------


def test_a_connection_that_sends_nothing_is_closed(server) -> None:
    with RawConnection(server.host, server.port) as conn:
        start = time.monotonic()
        assert conn.is_closed(1 + SLACK + 1), "a silent connection was never closed"
        elapsed = time.monotonic() - start
        assert 0.8 <= elapsed <= 1 + SLACK, elapsed
        assert_timed_out_with_408_or_silence(conn)


def test_slowloris_is_cut_off_although_it_keeps_sending(server) -> None:
    with RawConnection(server.host, server.port) as conn:
        head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 200
        elapsed = trickle(conn, head, pace=0.05, limit=1 + SLACK + 1)
        assert elapsed is not None, "a slowloris was served for longer than header_timeout"
        assert elapsed <= 1 + SLACK, elapsed
        assert_timed_out_with_408_or_silence(conn)


def test_header_clock_runs_from_accept(covetd) -> None:
    # header_timeout 2 s: idle 1.2 s after connecting, then trickle. Cut off by 2 s
    # after accept (+ slack), not 2 s after the first byte (which would be >= 3.2 s).
    server = covetd("engine_probe:app", {"http": {"header_timeout": 2}})
    with RawConnection(server.host, server.port) as conn:
        start = time.monotonic()
        assert nothing_arrives(conn, 1.2)
        trickle(conn, b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 200, 0.05, 3.0)
        assert conn.is_closed(3.0)
        elapsed = time.monotonic() - start
        assert elapsed <= 2 + SLACK, elapsed
        assert_timed_out_with_408_or_silence(conn)


def test_next_head_on_a_keep_alive_connection_has_its_own_deadline(server) -> None:
    with RawConnection(server.host, server.port) as conn:
        conn.send(request("/"))
        assert read_response(conn).status == 200
        elapsed = trickle(conn, b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 200, 0.05, 3.0)
        assert elapsed is not None and elapsed <= 1 + SLACK, elapsed
        assert_timed_out_with_408_or_silence(conn)


@pytest.mark.parametrize(
    "first",
    [
        request("/sleep?s=0.2"),
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab",
    ],
    ids=["after-a-get", "after-a-body"],
)
def test_partial_head_behind_an_in_flight_request_is_timed_out(server, first: bytes) -> None:
    # The next request's head starts arriving while the first is being handled and then
    # stalls: header_timeout must still apply to it.
    with RawConnection(server.host, server.port) as conn:
        start = time.monotonic()
        conn.send(first + b"GET / HTTP/1.1\r\nHost: x\r\nX-Sta")
        assert read_response(conn).status == 200
        assert conn.is_closed(1 + SLACK + 1), "a stalled head was never timed out"
        assert time.monotonic() - start <= 0.2 + 1 + SLACK
        assert_timed_out_with_408_or_silence(conn)


# -- keepalive_timeout ----------------------------------------------------------------


def test_idle_keep_alive_connection_is_closed(server) -> None:
    with RawConnection(server.host, server.port) as conn:
        conn.send(request("/"))
        response = read_response(conn)
        assert (response.status, response.header("connection")) == (200, None)
        start = time.monotonic()
        assert conn.is_closed(1 + SLACK + 1), "an idle keep-alive connection stayed open"
        assert 0.8 <= time.monotonic() - start <= 1 + SLACK
        assert conn.buffer == b""


def test_timeouts_do_not_cut_a_slow_handler(server) -> None:
    with RawConnection(server.host, server.port) as conn:
        conn.send(request("/sleep?s=1.6"))
        response = read_response(conn)
    assert (response.status, response.body) == (200, b"slept")


# -- body_timeout ---------------------------------------------------------------------


def test_client_that_stops_mid_body_gets_408_or_is_closed(server) -> None:
    with RawConnection(server.host, server.port) as conn:
        conn.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        start = time.monotonic()
        assert conn.is_closed(1 + SLACK + 1), "a stalled body was never timed out"
        assert time.monotonic() - start <= 1 + SLACK
        assert_timed_out_with_408_or_silence(conn)


def test_body_timeout_is_between_bytes_not_for_the_whole_body(server) -> None:
    body = b"slow!"
    with RawConnection(server.host, server.port) as conn:
        conn.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n")
        for i in range(len(body)):  # 5 x 0.35 s: longer than body_timeout in total
            conn.send(body[i : i + 1])
            if i < len(body) - 1:
                assert nothing_arrives(conn, 0.35), conn.buffer
        response = read_response(conn)
    assert (response.status, response.body) == (200, body)
