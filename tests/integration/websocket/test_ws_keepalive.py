"""Keepalive pings (issue 5, deliverable 2): covetd pings a silent peer every
``ping_interval`` and closes with 1011 a peer whose pong is ``ping_timeout`` late. The
client is wsproto, which never answers a ping on its own: the test decides.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from support.process import Covetd
from wsclients import WsprotoClient
from wsproto import events as wp

INTERVAL = 0.5
TIMEOUT = 2.0  # a test process stalled by a busy machine still answers in time
# The server checks its timer at most once a second: a late pong is noticed within
# INTERVAL + TIMEOUT + 1 s of silence; the rest is margin for a busy machine.
CLOSED_WITHIN = INTERVAL + TIMEOUT + 1.0 + 5.0


@pytest.fixture(scope="module")
def server(module_covetd: Any) -> Covetd:
    config = {"websocket": {"ping_interval": INTERVAL, "ping_timeout": TIMEOUT}}
    server: Covetd = module_covetd("ws_covet:app", config)
    return server


def test_a_client_that_never_answers_pings_is_closed_1011(server: Covetd) -> None:
    with WsprotoClient.open(server.host, server.port, "/hold", auto_pong=False) as client:
        started = time.monotonic()
        closed = client.wait_closed(timeout=CLOSED_WITHIN + 5)
        elapsed = time.monotonic() - started
    assert (closed.code, closed.reason, closed.eof) == (1011, "keepalive ping timeout", True)
    assert client.pings, "closed without a ping first"
    assert TIMEOUT <= elapsed < CLOSED_WITHIN, elapsed  # not before the pong was late


def test_a_client_that_answers_pings_stays_open(server: Covetd) -> None:
    """Silent for longer than a client that does not answer pings lasts, but
    answering every ping: still open."""
    quiet_for = INTERVAL + TIMEOUT + 1.5
    with WsprotoClient.open(server.host, server.port, "/echo", auto_pong=True) as client:
        deadline = time.monotonic() + quiet_for
        while time.monotonic() < deadline:
            try:
                event = client.next_event(timeout=deadline - time.monotonic())
            except TimeoutError:
                break
            assert isinstance(event, wp.Ping), f"only pings expected, got {event}"
        assert len(client.pings) >= 2, client.pings
        client.send_text("still there")
        assert client.receive() == "still there"
        client.close()
        assert client.wait_closed().code == 1000


def test_no_pings_with_ping_interval_0(covetd: Any) -> None:
    server = covetd("ws_covet:app", {"websocket": {"ping_interval": 0, "ping_timeout": 0.5}})
    with WsprotoClient.open(server.host, server.port, "/echo", auto_pong=False) as client:
        with pytest.raises(TimeoutError):
            client.next_event(timeout=2.0)  # nothing at all: no ping, no close
        client.send_text("alive")
        assert client.receive() == "alive"
        assert client.pings == []
