"""Graceful stop with WebSockets open (issue 5, deliverable 2; DESIGN.md §5): TERM to
the master → every WebSocket gets close 1001, on every worker, and the master exits 0
within ``graceful_timeout``.

A client that never answers the close frame is hung up after
``websocket.close_timeout`` (not held until ``graceful_timeout``), and a WebSocket
accepted during the drain gets its 1001 too.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from typing import Any

import pytest
from support.process import Covetd, wait_for
from support.proctree import assert_gone, wait_for_children
from support.rawhttp import RawConnection
from wsclients import WsprotoClient, closed_by_server, get_json, upgrade_request, ws_connect
from wsproto import events as wp

GRACEFUL = 10.0
GOING_AWAY = (1001, "server shutting down")


def wait_exit(server: Covetd, timeout: float) -> int:
    try:
        return server.wait(timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the master still runs {timeout}s after TERM:\n{server.log()}")


def test_term_sends_1001_to_every_websocket_and_exits_0(covetd: Any) -> None:
    server = covetd(
        "ws_covet:app",
        {"server": {"workers": 2, "graceful_timeout": GRACEFUL}, "websocket": {"ping_interval": 0}},
    )
    workers = wait_for_children(server.proc.pid, 2)
    with contextlib.ExitStack() as stack:
        library = [stack.enter_context(ws_connect(server, "/echo")) for _ in range(8)]
        independent = [
            stack.enter_context(WsprotoClient.open(server.host, server.port, "/echo"))
            for _ in range(4)
        ]
        for client in library:  # every connection is a live, accepted WebSocket
            client.send("ping?")
            assert client.recv(timeout=10) == "ping?"
        for raw in independent:
            raw.send_text("ping?")
            assert raw.receive() == "ping?"

        termed_at = time.monotonic()
        server.signal(signal.SIGTERM)
        codes = [closed_by_server(client, timeout=GRACEFUL) for client in library]
        raw_closes = [raw.wait_closed(timeout=GRACEFUL) for raw in independent]
        code = wait_exit(server, GRACEFUL + 5)
        stopped = time.monotonic() - termed_at
    assert codes == [GOING_AWAY] * len(library)
    assert [(c.code, c.reason, c.eof) for c in raw_closes] == [(*GOING_AWAY, True)] * 4
    assert code == 0, server.log()
    assert stopped < GRACEFUL, f"exited after {stopped:.1f}s"
    assert "graceful timeout" not in server.log()  # nobody had to be cut off
    assert_gone(workers)


def test_both_workers_close_their_websockets(covetd: Any) -> None:
    """Connections spread over two workers (SO_REUSEPORT hashing): whichever worker
    holds a connection sends its 1001."""
    server = covetd(
        "ws_covet:app",
        {"server": {"workers": 2, "graceful_timeout": GRACEFUL}, "websocket": {"ping_interval": 0}},
    )
    workers = set(wait_for_children(server.proc.pid, 2))
    with contextlib.ExitStack() as stack:
        clients: list[WsprotoClient] = []
        owners: set[int] = set()

        def on_both_workers() -> bool:
            client = stack.enter_context(WsprotoClient.open(server.host, server.port, "/whose"))
            clients.append(client)
            owners.add(client.receive_json()["pid"])
            return owners == workers

        wait_for(on_both_workers, 20, 0, "WebSockets on both workers")
        server.signal(signal.SIGTERM)
        closes = [client.wait_closed(timeout=GRACEFUL) for client in clients]
    assert [(c.code, c.eof) for c in closes] == [(1001, True)] * len(clients)
    assert wait_exit(server, GRACEFUL) == 0


def test_a_client_that_never_answers_the_close_is_hung_up_after_close_timeout(
    covetd: Any,
) -> None:
    """The 1001 waits ``close_timeout`` for the peer's close frame, not the whole
    ``graceful_timeout``; keepalive pings stop once the close frame is sent."""
    close_timeout = 1.0
    server = covetd(
        "ws_covet:app",
        {
            "server": {"workers": 1, "graceful_timeout": GRACEFUL},
            "websocket": {"ping_interval": 0.3, "ping_timeout": 5, "close_timeout": close_timeout},
        },
    )
    with WsprotoClient.open(server.host, server.port, "/hold", auto_pong=True) as silent:
        termed_at = time.monotonic()
        server.signal(signal.SIGTERM)
        event = silent.next_event(timeout=GRACEFUL)
        while isinstance(event, wp.Ping):  # pings sent before the TERM may come first
            event = silent.next_event(timeout=GRACEFUL)
        assert isinstance(event, wp.CloseConnection), event
        assert (event.code, event.reason) == GOING_AWAY
        # Never answered: the server hangs up on its own after close_timeout.
        rest = silent.next_event(timeout=GRACEFUL)  # wsproto reports EOF as a 1006
        assert silent.eof and isinstance(rest, wp.CloseConnection) and rest.code == 1006, rest
        hung_up = time.monotonic() - termed_at
        code = wait_exit(server, GRACEFUL)
        stopped = time.monotonic() - termed_at
    assert close_timeout <= hung_up < close_timeout + 4, hung_up
    assert code == 0
    assert stopped < GRACEFUL / 2, f"held until graceful_timeout: {stopped:.1f}s"
    assert "Exception in callback" not in server.log(), server.log()
    assert "graceful timeout" not in server.log()


def test_a_websocket_accepted_during_the_drain_gets_1001(covetd: Any) -> None:
    """The handler accepts after TERM arrived (it was checking credentials): the new
    WebSocket is closed 1001 at once instead of living until graceful_timeout."""
    server = covetd(
        "ws_covet:app",
        {"server": {"workers": 1, "graceful_timeout": GRACEFUL}, "websocket": {"ping_interval": 0}},
    )
    with WsprotoClient.open(server.host, server.port, "/hold?key=warm") as warm:
        # The slow handshake: the request is in, the handler sleeps before accepting.
        with RawConnection(server.host, server.port, timeout=GRACEFUL) as slow:
            slow.send(upgrade_request("/slow-accept?s=1.5&key=slow"))
            wait_for(lambda: get_json(server, "/observed/slow"), 10, what="the slow handler")
            termed_at = time.monotonic()
            server.signal(signal.SIGTERM)
            assert warm.wait_closed(timeout=GRACEFUL).code == 1001  # the drain has begun
            head = slow.read_until(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 101 "), head
            close = slow.read_exactly(2)
            assert close[0] == 0x88, close  # a close frame, straight after the 101
            payload = slow.read_exactly(close[1])
            assert int.from_bytes(payload[:2], "big") == 1001
            answered = time.monotonic() - termed_at
        code = wait_exit(server, GRACEFUL)
        stopped = time.monotonic() - termed_at
    assert answered < GRACEFUL / 2, answered
    assert code == 0
    assert stopped < GRACEFUL, stopped
