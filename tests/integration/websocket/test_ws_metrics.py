"""WebSocket metrics (DESIGN.md §6): ``covetd_websocket_connections_active`` and
``covetd_websocket_messages_total{direction="in"|"out"}`` follow the traffic, summed
over two workers by the master's ``/metrics``. Workers sample them once a second, so
every check waits for the value with a deadline.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from support.metrics_server import MetricsServer, Scrape, start_metrics_server
from wsclients import WsprotoClient

ACTIVE = "covetd_websocket_connections_active"
MESSAGES = "covetd_websocket_messages_total"


@pytest.fixture
def server() -> Iterator[MetricsServer]:
    started = start_metrics_server(
        {"websocket": {"ping_interval": 0}}, workers=2, app="ws_covet:app"
    )
    try:
        yield started
    finally:
        started.stop()


def active(scrape: Scrape) -> float:
    return scrape.total(ACTIVE)


def messages_in(scrape: Scrape) -> float:
    return scrape.total(MESSAGES, direction="in")


def messages_out(scrape: Scrape) -> float:
    return scrape.total(MESSAGES, direction="out")


class Target:
    """Where the WebSocket clients connect (the app's port)."""

    def __init__(self, server: MetricsServer) -> None:
        self.host, self.port = "127.0.0.1", server.port
        self.url = f"http://127.0.0.1:{server.port}"


def test_connections_and_messages_follow_the_traffic(server: MetricsServer) -> None:
    scrape = server.scrape()
    assert scrape.types["covetd_websocket_connections_active"] == "gauge"
    assert scrape.types["covetd_websocket_messages"] == "counter"
    assert (active(scrape), messages_in(scrape), messages_out(scrape)) == (0, 0, 0)
    target = Target(server)
    with contextlib.ExitStack() as stack:
        clients = [
            stack.enter_context(WsprotoClient.open(target.host, target.port, "/whose"))
            for _ in range(6)
        ]
        workers = {client.receive_json()["pid"] for client in clients}  # 6 out
        server.wait_value(active, 6, "open WebSockets")
        for round_ in range(5):
            for client in clients:
                client.send_text(f"{round_}")
                assert client.receive() == f"{round_}"
        server.wait_value(messages_in, 30, "messages in")
        server.wait_value(messages_out, 36, "messages out")

        for client in clients[:4]:
            client.close()
            assert client.wait_closed().code == 1000
        server.wait_value(active, 2, "WebSockets left open")
    server.wait_value(active, 0, "WebSockets once all closed")
    final = server.scrape()
    assert (messages_in(final), messages_out(final)) == (30, 36)  # counters never go back
    print(f"served by workers {sorted(workers)}")


def test_refused_upgrades_are_not_websocket_connections(server: MetricsServer) -> None:
    """A refusal is an HTTP answer: no WebSocket is counted, open or ever."""
    target = Target(server)
    with WsprotoClient.open(target.host, target.port, "/refuse/silently") as refused:
        assert refused.rejection is not None and refused.rejection.status == 403
    with WsprotoClient.open(target.host, target.port, "/hold") as held:
        server.wait_value(active, 1, "the one accepted WebSocket")
        held.close()
        held.wait_closed()
    scrape = server.wait_value(active, 0, "no open WebSocket")
    assert (messages_in(scrape), messages_out(scrape)) == (0, 0)
