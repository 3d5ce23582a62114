"""Requests the engine refuses before any handler runs are counted too, and a
WebSocket session's length stays out of the request latency histogram."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import websockets
from support.metrics_server import REQUESTS, MetricsServer
from support.rawhttp import RawConnection

Start = Callable[..., MetricsServer]
DURATION_COUNT = "covetd_http_request_duration_seconds_count"


def refused(server: MetricsServer, raw: bytes) -> bytes:
    with RawConnection("127.0.0.1", server.port) as conn:
        conn.send(raw)
        return conn.read_until(b"\r\n\r\n")


def test_refused_requests_are_counted_by_status(metrics_server: Start) -> None:
    server = metrics_server({"http": {"max_body_size": 1000}}, workers=1)
    too_big = b"POST /items/1 HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n"
    assert refused(server, too_big).startswith(b"HTTP/1.1 413 ")
    too_long = b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n"
    assert refused(server, too_long).startswith(b"HTTP/1.1 414 ")
    smuggled = (
        b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    assert refused(server, smuggled).startswith(b"HTTP/1.1 400 ")

    scrape = server.wait_value(
        lambda s: s.total(REQUESTS, route="<unmatched>", status="413"), 1, "the 413"
    )
    assert scrape.total(REQUESTS, method="POST", status="413") == 1
    assert scrape.total(REQUESTS, status="414") == 1
    assert scrape.total(REQUESTS, status="400") == 1


def test_websocket_sessions_count_but_are_not_timed(metrics_server: Start) -> None:
    server = metrics_server(app="ws_metrics_app:app", workers=1)

    async def session() -> None:
        async with websockets.connect(f"ws://127.0.0.1:{server.port}/echo") as ws:
            await ws.send("x")
            assert await ws.recv() == "x"

    asyncio.run(asyncio.wait_for(session(), 20))
    scrape = server.wait_value(lambda s: s.total(REQUESTS, status="101"), 1, "the session")
    assert scrape.total(DURATION_COUNT, route="/echo") == 0
