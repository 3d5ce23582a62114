"""Issue 3 / DESIGN.md section 5: TERM stops gracefully, INT and QUIT stop fast.

TERM: in-flight requests finish (200, ``Connection: close``), an idle keep-alive
connection gets one more answer (with ``Connection: close``) or is closed after 2 s of
silence, the master exits 0 within ``graceful_timeout``; a
request slower than that is cut off and the master still exits. INT/QUIT: exit 0 at
once, without waiting for in-flight requests.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
from support.process import wait_for
from support.proctree import assert_gone, wait_for_children
from support.rawhttp import RawConnection

SLOW = 2.0  # seconds a slow request takes
IDLE_GRACE = 2.0  # an idle connection's last chance of a request (HANDOVER_IDLE)


def _start_slow(server, state_dir: Path, count: int, seconds: float) -> list[RawConnection]:
    """``count`` connections, each with a slow request *running* in a handler."""
    conns = []
    for _ in range(count):
        conn = RawConnection(server.host, server.port, timeout=seconds + 10)
        conn.send(f"GET /slow?s={seconds} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        conns.append(conn)
    wait_for(
        lambda: len(list(state_dir.glob("slow-*"))) == count, 5.0, what="slow handlers running"
    )
    return conns


def _idle(server, count: int) -> list[RawConnection]:
    """``count`` keep-alive connections that finished a request and now wait."""
    conns = []
    for _ in range(count):
        conn = RawConnection(server.host, server.port, timeout=5.0)
        conn.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        assert conn.read_response().status == 200
        conns.append(conn)
    return conns


def _until_draining(conn: RawConnection, deadline: float = 5.0) -> None:
    """Send requests on an idle keep-alive connection until one is answered with
    ``connection: close``: the worker has begun draining (a sync point, no sleep)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        conn.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        answer = conn.read_response()
        assert answer.status == 200
        if answer.header("connection") == "close":
            assert conn.is_closed(timeout=2.0)
            return
    pytest.fail("the worker did not begin draining")


def _wait_exit(server, timeout: float) -> int:
    try:
        return server.wait(timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the master still runs {timeout}s after the signal:\n{server.log()}")


def test_term_finishes_in_flight_requests_and_closes_idle_connections(covetd, tmp_path) -> None:
    graceful = 8.0
    server = covetd(
        "master_failures:app",
        {"server": {"workers": 2, "graceful_timeout": graceful}},
        env={"COVETD_TEST_STATE_DIR": str(tmp_path)},
    )
    workers = wait_for_children(server.proc.pid, 2)
    idle = _idle(server, 3)
    slow = _start_slow(server, tmp_path, 4, SLOW)
    try:
        termed_at = time.monotonic()
        server.signal(signal.SIGTERM)
        # An idle client that sends its next request once the worker drains is
        # answered, with close; the silent ones are closed after the grace.
        _until_draining(idle[0])
        for conn in idle:
            assert conn.is_closed(timeout=IDLE_GRACE + 3), "idle connection left open"
        idle_closed = time.monotonic() - termed_at
        answers = [conn.read_response() for conn in slow]
        code = _wait_exit(server, graceful)
        stopped = time.monotonic() - termed_at
    finally:
        for conn in idle + slow:
            conn.close()
    print(f"TERM: idle closed after {idle_closed:.2f}s, master exited after {stopped:.2f}s")
    assert [(a.status, a.body) for a in answers] == [(200, b"slow done")] * 4
    assert [a.header("connection") for a in answers] == ["close"] * 4
    assert code == 0, server.log()
    assert stopped < graceful
    assert_gone(workers)


def test_term_with_a_request_slower_than_graceful_timeout_still_exits(covetd, tmp_path) -> None:
    graceful = 1.0
    server = covetd(
        "master_failures:app",
        {"server": {"workers": 2, "graceful_timeout": graceful}},
        env={"COVETD_TEST_STATE_DIR": str(tmp_path)},
    )
    workers = wait_for_children(server.proc.pid, 2)
    [slow] = _start_slow(server, tmp_path, 1, 30.0)
    with slow:
        termed_at = time.monotonic()
        server.signal(signal.SIGTERM)
        code = _wait_exit(server, graceful + 3.0)
        stopped = time.monotonic() - termed_at
        assert slow.is_closed(timeout=1.0), "the cut-off request's connection stayed open"
        assert b"slow done" not in slow.buffer
    print(f"TERM past graceful_timeout={graceful}s: master exited after {stopped:.2f}s")
    assert stopped >= graceful * 0.9, "the slow request was not given graceful_timeout"
    assert code == 0, server.log()
    assert "graceful timeout" in server.log()
    assert_gone(workers)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGQUIT], ids=["INT", "QUIT"])
def test_int_and_quit_stop_at_once(covetd, tmp_path, signum) -> None:
    server = covetd(
        "master_failures:app",
        {"server": {"workers": 2, "graceful_timeout": 30}},
        env={"COVETD_TEST_STATE_DIR": str(tmp_path)},
    )
    workers = wait_for_children(server.proc.pid, 2)
    [slow] = _start_slow(server, tmp_path, 1, 30.0)
    with slow:
        signalled_at = time.monotonic()
        server.signal(signum)
        code = _wait_exit(server, 3.0)
        stopped = time.monotonic() - signalled_at
        assert slow.is_closed(timeout=1.0)
    print(f"{signal.Signals(signum).name}: master exited after {stopped:.2f}s")
    assert code == 0, server.log()
    assert "fast stop" in server.log()
    assert_gone(workers)


def test_int_after_term_escalates_to_a_fast_stop(covetd, tmp_path) -> None:
    """An operator who gives up waiting (a second Ctrl-C) gets a fast stop."""
    server = covetd(
        "master_failures:app",
        {"server": {"workers": 2, "graceful_timeout": 30}},
        env={"COVETD_TEST_STATE_DIR": str(tmp_path)},
    )
    workers = wait_for_children(server.proc.pid, 2)
    [slow] = _start_slow(server, tmp_path, 1, 30.0)
    with slow:
        server.signal(signal.SIGTERM)
        wait_for(lambda: "graceful stop" in server.log(), 5.0, what="the graceful stop")
        escalated_at = time.monotonic()
        server.signal(signal.SIGINT)
        code = _wait_exit(server, 10.0)
        stopped = time.monotonic() - escalated_at
    print(f"TERM then INT: master exited {stopped:.2f}s after INT")
    assert stopped < 2.0, f"the fast stop took {stopped:.1f}s:\n{server.log()}"
    assert "did not stop in time" not in server.log(), "workers ignored the fast stop"
    assert code == 0, server.log()
    assert "fast stop" in server.log()
    assert_gone(workers)


def test_int_while_workers_are_starting_stops_at_once(covetd, tmp_path) -> None:
    """A fast stop does not wait for a slow app startup to finish."""
    server = covetd(
        "master_failures:app",
        {"server": {"workers": 2}},
        wait=False,
        env={"COVETD_TEST_STATE_DIR": str(tmp_path), "COVETD_TEST_STARTUP_DELAY": "10"},
    )
    workers = wait_for_children(server.proc.pid, 2)
    wait_for(lambda: len(list(tmp_path.glob("starting-*"))) == 2, 10.0, what="app startups running")
    signalled_at = time.monotonic()
    server.signal(signal.SIGINT)
    code = _wait_exit(server, 15.0)
    stopped = time.monotonic() - signalled_at
    print(f"INT during startup: master exited after {stopped:.2f}s")
    assert code == 0, server.log()
    assert stopped < 2.0, f"fast stop took {stopped:.1f}s:\n{server.log()}"
    assert_gone(workers)


def test_term_gives_a_fresh_connection_its_first_answer(covetd, tmp_path) -> None:
    # A connection accepted but still silent when TERM arrives has a first request on
    # its way; clients do not retry a first request that meets a closed connection
    # (they do retry on a reused keep-alive one), so it is answered, with close.
    server = covetd("master_failures:app", {"server": {"workers": 1, "graceful_timeout": 8}})
    fresh = RawConnection(server.host, server.port, timeout=5.0)
    [idle] = _idle(server, 1)  # accepted after `fresh`: both are the worker's now
    try:
        server.signal(signal.SIGTERM)
        _until_draining(idle)
        fresh.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        answer = fresh.read_response()
        assert answer.status == 200
        assert answer.header("connection") == "close"
        assert _wait_exit(server, 8) == 0
    finally:
        fresh.close()
        idle.close()
