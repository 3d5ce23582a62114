"""The standard metrics (DESIGN.md §6), declared once, and the worker-side observer
that feeds them from engine events.

Label values are bounded by construction: ``method`` is one of the registered
methods or ``OTHER``; ``route`` is the route *template* (``/users/{id:int}``) or
``<unmatched>``, never the raw path; ``status`` is a status code.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ..engine.events import EngineObserver
from .cells import CellWriter

if TYPE_CHECKING:
    from ..engine.cycle import RequestCycle
    from ..engine.protocol import HttpProtocol
    from ..engine.server import HttpServer

__all__ = ["METRICS", "UNMATCHED", "EngineMetrics", "MetricSpec"]

Kind = Literal["counter", "gauge", "worker_gauge", "histogram", "summary"]


@dataclass(frozen=True)
class MetricSpec:
    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()


METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec(
            "covetd_http_requests_total",
            "counter",
            "HTTP requests answered.",
            ("method", "route", "status"),
        ),
        MetricSpec(
            "covetd_http_request_duration_seconds",
            "histogram",
            "Time from the request head to the response's end.",
            ("method", "route"),
        ),
        MetricSpec(
            "covetd_http_request_size_bytes", "summary", "Request body sizes.", ("method", "route")
        ),
        MetricSpec(
            "covetd_http_response_size_bytes",
            "summary",
            "Response sizes on the wire, head included.",
            ("method", "route"),
        ),
        MetricSpec("covetd_http_requests_in_flight", "gauge", "Requests being handled now."),
        MetricSpec("covetd_http_connections_active", "gauge", "Open client connections."),
        MetricSpec("covetd_websocket_connections_active", "gauge", "Open WebSocket connections."),
        MetricSpec(
            "covetd_websocket_messages_total", "counter", "WebSocket messages.", ("direction",)
        ),
        MetricSpec(
            "covetd_event_loop_lag_seconds",
            "worker_gauge",
            "How late the worker's event loop ran a timer, last measured.",
        ),
        MetricSpec(
            "covetd_db_pool_connections",
            "gauge",
            "Database pool connections by state.",
            ("pool", "state"),
        ),
        MetricSpec(
            "covetd_db_pool_acquire_seconds",
            "histogram",
            "Time waited to get a pool connection.",
            ("pool",),
        ),
        MetricSpec(
            "covetd_db_pool_errors_total",
            "counter",
            "Database pool failures (connect, acquire timeout).",
            ("pool",),
        ),
    )
}

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})
UNMATCHED = "<unmatched>"
LAG_INTERVAL = 1.0


class EngineMetrics(EngineObserver):
    """Turns engine events into cell updates: five array additions per request.

    Kept lean on purpose (the target is ≤ 5 % of a small request's cost): a series'
    histogram count is the sum of its bucket cells and doubles as the size summaries'
    count; the in-flight and connection gauges are sampled once a second from the
    server's own state instead of being counted per event.
    """

    def __init__(self, writer: CellWriter, buckets: tuple[float, ...]) -> None:
        self.writer = writer
        self.cells = writer.cells
        self.buckets = buckets
        self.in_flight = writer.cell("covetd_http_requests_in_flight")
        self.connections = writer.cell("covetd_http_connections_active")
        self.lag = writer.cell("covetd_event_loop_lag_seconds")
        self.websockets = writer.cell("covetd_websocket_connections_active")
        self.ws_in = writer.cell("covetd_websocket_messages_total", ("in",))
        self.ws_out = writer.cell("covetd_websocket_messages_total", ("out",))
        # (route, method, status) -> (requests_total cell, series base); a series'
        # cells are [duration sum, request bytes, response bytes, bucket 0 .. +Inf].
        self._cells: dict[tuple[str | None, str, int], tuple[int, int]] = {}
        self._series: dict[tuple[str, str], int] = {}

    def request_finished(self, cycle: RequestCycle) -> None:
        request = cycle.request
        route = request.route
        key = (
            route.path if route is not None else cycle.route_template,
            request.method,
            cycle.status,
        )
        cells_of = self._cells.get(key)
        if cells_of is None:
            cells_of = self._allocate(key)
        total, base = cells_of
        cells = self.cells
        cells[total] += 1
        if cycle.status == 101:
            return  # a WebSocket session: its length is not a request's latency
        duration = cycle.conn.loop.time() - cycle.started_at
        cells[base] += duration
        cells[base + 3 + bisect_left(self.buckets, duration)] += 1
        cells[base + 2] += cycle.bytes_sent
        if request.has_body:
            cells[base + 1] += request.content_length or 0

    def request_refused(self, conn: HttpProtocol, method: str | None, status: int) -> None:
        key = (None, method or "OTHER", status)
        cells_of = self._cells.get(key)
        if cells_of is None:
            cells_of = self._allocate(key)
        self.cells[cells_of[0]] += 1  # counted, not timed: no handler ran

    def _allocate(self, key: tuple[str | None, str, int]) -> tuple[int, int]:
        route, method, status = key
        labels = (method if method in METHODS else "OTHER", route or UNMATCHED)
        total = self.writer.cell("covetd_http_requests_total", (*labels, str(status or 499)))
        base = self._series.get(labels)
        if base is None:  # one series' cells together: indexes are base + offset
            base = self.writer.cell("covetd_http_request_duration_seconds", (*labels, "sum"))
            self.writer.cell("covetd_http_request_size_bytes", (*labels, "sum"))
            self.writer.cell("covetd_http_response_size_bytes", (*labels, "sum"))
            for bound in (*self.buckets, float("inf")):
                self.writer.cell("covetd_http_request_duration_seconds", (*labels, f"le={bound!r}"))
            self._series[labels] = base
        self._cells[key] = (total, base)
        return total, base

    def watch(self, loop: asyncio.AbstractEventLoop, server: HttpServer) -> None:
        """Once a second: the loop's lag (how late this timer fires: a busy or blocked
        loop shows here), the in-flight, connection and WebSocket gauges, and the
        WebSocket message counts (the server counts them; one addition per message)."""
        expected = loop.time() + LAG_INTERVAL
        cells = self.cells

        def tick() -> None:
            nonlocal expected
            now = loop.time()
            cells[self.lag] = max(0.0, now - expected)
            connections = server.connections
            cells[self.connections] = len(connections)
            busy = websockets = 0
            for conn in connections:
                if conn.websocket is not None:
                    websockets += conn.websocket.accepted and not conn.websocket.closed
                elif conn.cycle is not None:
                    busy += 1
            cells[self.in_flight] = busy
            cells[self.websockets] = websockets
            cells[self.ws_in] = server.websocket_received
            cells[self.ws_out] = server.websocket_sent
            expected = now + LAG_INTERVAL
            loop.call_later(LAG_INTERVAL, tick)

        loop.call_later(LAG_INTERVAL, tick)
