"""One worker's HTTP server: listening sockets in, connections tracked, drained on stop.

The listening sockets belong to whoever bound them (the master, or the single-process
runner); the server listens on duplicates of them. Pausing accept (``max_connections``)
closes only the duplicates, so connections keep queueing in the kernel's accept queue
and nothing is refused: backpressure, not errors.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
from collections.abc import Callable

from ..config import HttpConfig, WebsocketConfig
from .cycle import RequestCycle
from .events import EngineObserver
from .h1.limits import Limits
from .h1.writer import Preamble
from .protocol import HttpProtocol

__all__ = ["HttpServer", "Runner"]

error_log = logging.getLogger("covetd.error")

# Starts one request on its connection's driver (native app or ASGI bridge).
Runner = Callable[[RequestCycle], None]

TICK_SECONDS = 0.5  # Date refresh and deadline sweep
HANDOVER_IDLE = 2.0


class HttpServer:
    """Serves one runner (native app or ASGI bridge) on a set of listening sockets.

    Construct it inside the worker's running event loop.
    """

    def __init__(
        self,
        runner: Runner,
        http: HttpConfig,
        *,
        ssl_context: ssl.SSLContext | None = None,
        observer: EngineObserver | None = None,
        send_timeout: float = 60.0,
        backlog: int = 2048,
        websocket: WebsocketConfig | None = None,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.runner = runner
        self.observer = observer
        self.ssl_context = ssl_context
        self.scheme = "https" if ssl_context is not None else "http"
        self.limits = Limits(
            max_request_line=http.max_request_line,
            max_header_size=http.max_header_size,
            max_headers=http.max_headers,
            max_body_size=http.max_body_size,
        )
        self.preamble = Preamble(http.server_header)
        self.header_timeout = http.header_timeout
        self.body_timeout = http.body_timeout
        self.keepalive_timeout = http.keepalive_timeout
        self.send_timeout = send_timeout
        # uvloop calls listen() again on a socket it is given: pass the real backlog.
        self.backlog = backlog
        self.websocket = websocket  # None: upgrades are served as plain HTTP
        self.websocket_received = 0  # messages, for the metrics
        self.websocket_sent = 0
        self.max_connections = http.max_connections
        self.connections: set[HttpProtocol] = set()
        self.requests_served = 0
        self.draining = False
        # Listening sockets (owned elsewhere) and the asyncio server on a duplicate of
        # each while this worker accepts on it.
        self._listeners: dict[socket.socket, asyncio.Server | None] = {}
        self._accepting = False
        self._accept_change: asyncio.Task[None] | None = None
        self._tick_handle: asyncio.TimerHandle | None = None
        self._all_closed = asyncio.Event()

    # -- life --------------------------------------------------------------------------

    async def start(self, sockets: list[socket.socket]) -> None:
        self._accepting = True
        for sock in sockets:
            await self.add_socket(sock)
        self._tick()

    async def add_socket(self, sock: socket.socket) -> None:
        """Accept on ``sock`` too (a listening socket handed over at run time)."""
        self._listeners[sock] = None
        if self._accepting:
            await self._listen_on(sock)

    def remove_socket(self, sock: socket.socket) -> None:
        """Stop accepting on ``sock``; what its queue holds waits for its next owner."""
        server = self._listeners.pop(sock, None)
        if server is not None:
            server.close()

    async def _listen_on(self, sock: socket.socket) -> None:
        server = await self.loop.create_server(
            self._new_protocol,
            sock=sock.dup(),
            ssl=self.ssl_context,
            backlog=self.backlog,
            start_serving=True,
        )
        if self._accepting and sock in self._listeners and self._listeners[sock] is None:
            self._listeners[sock] = server
        else:  # stopped, or handed away, while we were setting up
            server.close()

    async def _listen_all(self) -> None:
        for sock, server in list(self._listeners.items()):
            if server is None and self._accepting:
                await self._listen_on(sock)

    def _stop_listening(self) -> None:
        for sock, server in self._listeners.items():
            if server is not None:
                server.close()
                self._listeners[sock] = None

    async def shutdown(self, timeout: float) -> None:
        """Stop accepting, let in-flight requests finish for ``timeout`` s, then force.

        An idle connection is not closed under a client that may be sending its next
        request right now (a reused keep-alive connection that meets a close gets a
        reset, which a client that does not retry reports as a failure): it gets one
        more answer (with ``connection: close``) or is closed once silent for
        ``HANDOVER_IDLE`` s; a fresh connection waits as long for its first request.
        The same whether another worker takes over (reload, recycle) or the server
        stops: with socket activation the listening socket outlives us too.
        """
        self.draining = True
        self._accepting = False
        self._stop_listening()
        idle_grace = min(self.keepalive_timeout, HANDOVER_IDLE)
        fresh_grace = min(self.header_timeout, HANDOVER_IDLE)
        for conn in list(self.connections):
            conn.shutdown(idle_grace, fresh_grace)
        if self.connections:
            try:
                await asyncio.wait_for(self._all_closed.wait(), timeout)
            except TimeoutError:
                self._force_close()
        if self._tick_handle is not None:
            self._tick_handle.cancel()

    def hurry(self) -> None:
        """A fast stop arrived during a graceful one: drop what is left now."""
        if self.draining and self.connections:
            self._force_close()

    def _force_close(self) -> None:
        error_log.warning(
            "graceful timeout: closing %d connection(s) with requests still in flight",
            len(self.connections),
        )
        for conn in list(self.connections):
            task = conn.driver.task
            if conn.cycle is not None and task is not None:
                task.cancel()
            conn.abort()

    # -- connections -------------------------------------------------------------------

    def _new_protocol(self) -> HttpProtocol:
        return HttpProtocol(self)

    def connection_made(self, conn: HttpProtocol) -> None:
        self.connections.add(conn)
        if self.draining:  # accepted just before the listeners closed: drain it too
            conn.shutdown(0.0, min(self.header_timeout, HANDOVER_IDLE))
        if len(self.connections) >= self.max_connections and self._accepting:
            self._set_accepting(False)
        if self.observer is not None:
            self.observer.connection_opened(conn)

    def connection_lost(self, conn: HttpProtocol) -> None:
        self.connections.discard(conn)
        if self.observer is not None:
            self.observer.connection_closed(conn)
        if self.draining:
            if not self.connections:
                self._all_closed.set()
        elif not self._accepting and len(self.connections) < self.max_connections:
            self._set_accepting(True)

    def _set_accepting(self, accepting: bool) -> None:
        self._accepting = accepting
        if accepting:
            if self._accept_change is None or self._accept_change.done():
                self._accept_change = self.loop.create_task(self._listen_all())
        else:
            self._stop_listening()

    # -- requests ----------------------------------------------------------------------

    # -- housekeeping ------------------------------------------------------------------

    def _tick(self) -> None:
        self.preamble.refresh(time.time())
        now = self.loop.time()
        expired = [c for c in self.connections if c.deadline and c.deadline <= now]
        for conn in expired:
            conn.check_deadline(now)
        self._tick_handle = self.loop.call_later(TICK_SECONDS, self._tick)
