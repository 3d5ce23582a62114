"""The engine side of a WebSocket: the connection after ``101 Switching Protocols``.

A ``WebSocketSession`` is the ``WebSocketChannel`` a handler's ``WebSocket`` talks to
(and what the ASGI bridge turns into ``websocket.*`` events). It owns the sans-IO
``ws.Connection``; the connection's protocol (``protocol.py``) hands it every read
once the upgrade request was taken.

Invariants:

- nothing is written before ``accept`` (the handshake is the app's to complete or
  refuse with an HTTP response);
- reading pauses while more than ``RECEIVE_QUEUE`` messages wait for the handler, and
  ``send`` waits while the transport's buffer is full: a slow reader on either side
  cannot grow memory without bound (``send_nowait``, used by broadcasts, refuses
  instead of waiting once ``websocket.max_send_buffer`` bytes are unsent);
- keepalive: a ping after ``ping_interval`` of silence; no pong within
  ``ping_timeout`` closes with 1011;
- every end of the session ends ``receive`` with ``WebSocketDisconnect``; a close we
  start (``close``, ``close_nowait``, the 1001 of a graceful stop) waits at most
  ``close_timeout`` for the peer's close frame, then hangs up;
- an upgrade request ends its connection whatever the app answers (101 or a refusal).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..app.websockets import WebSocketDisconnect
from ..config import WebsocketConfig
from . import ws
from .ws.close import ABNORMAL_CLOSURE

if TYPE_CHECKING:
    from .cycle import RequestCycle
    from .protocol import HttpProtocol

__all__ = ["WebSocketSession"]

error_log = logging.getLogger("covetd.error")

RECEIVE_QUEUE = 64
GOING_AWAY = 1001
INTERNAL_ERROR = 1011
POLICY_VIOLATION = 1008


class WebSocketSession:
    """One accepted (or being accepted) WebSocket connection."""

    def __init__(
        self,
        conn: HttpProtocol,
        cycle: RequestCycle,
        upgrade: ws.UpgradeRequest,
        config: WebsocketConfig,
    ) -> None:
        self.conn = conn
        self.cycle = cycle
        self.upgrade = upgrade
        self.config = config
        self.offered_subprotocols = list(upgrade.subprotocols)
        self.close_code: int | None = None
        self.close_reason = ""
        self.protocol: ws.Connection | None = None  # once accepted
        self.accepted = False
        self.closed = False
        self._early = bytearray()  # bytes that came before accept
        self._inbox: deque[str | bytes] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed_waiter: asyncio.Future[None] | None = None
        self._paused = False
        self._last_seen = time.monotonic()
        self._ping_sent_at = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._rate_tokens = config.message_rate
        self._rate_at = time.monotonic()
        self.server = conn.server  # counts messages for the metrics
        # Whatever the app answers ends the connection: after an upgrade request the
        # client's next bytes are frames or nothing, and a refusal (404, 403...) that
        # kept the connection alive would leave the client's next request unread.
        cycle.keep_alive = False

    # -- the handshake -------------------------------------------------------------------

    async def accept(self, subprotocol: str | None, headers: list[tuple[bytes, bytes]]) -> None:
        if self.closed:
            raise WebSocketDisconnect(self.close_code or ABNORMAL_CLOSURE)
        deflate = None
        if self.config.compression:
            deflate = ws.negotiate_deflate(self.upgrade.extensions, ws.DeflateConfig())
        head = ws.accept_response(
            self.upgrade,
            subprotocol=subprotocol,
            extensions=[deflate.response_header] if deflate else [],
            extra_headers=headers,
            preamble=self.conn.server.preamble.value,
        )
        self.protocol = ws.Connection(
            max_message_size=self.config.max_message_size, deflate=deflate
        )
        cycle = self.cycle
        cycle.response_started = True
        cycle.status = 101
        cycle.keep_alive = False
        self.accepted = True
        self.conn.write(head)
        self._arm_keepalive()
        if self._early:
            early, self._early = bytes(self._early), bytearray()
            self.data_received(early)
        if self.server.draining:  # accepted during a graceful stop: it gets its 1001 too
            self.going_away()

    # -- reading -------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        """Every read of the transport once the upgrade was taken."""
        if self.protocol is None:
            if len(self._early) + len(data) > self.config.max_message_size:
                self._abort()  # a client flooding before the handshake completed
                return
            self._early += data
            return
        self._last_seen = time.monotonic()
        for event in self.protocol.receive_data(data):
            self._on_event(event)
        if len(self._inbox) >= RECEIVE_QUEUE and not self._paused:
            self._paused = True
            self.conn.pause_reading_for_body()

    def _on_event(self, event: object) -> None:
        protocol = self.protocol
        assert protocol is not None
        if isinstance(event, ws.TextMessage | ws.BytesMessage):
            if self.config.message_rate and not self._take_token():
                self._fail(POLICY_VIOLATION, "message rate exceeded")
                return
            self.server.websocket_received += 1
            self._inbox.append(event.data)
            self._wake()
        elif isinstance(event, ws.Ping):
            self.conn.write(protocol.send_pong(event.payload))
        elif isinstance(event, ws.Pong):
            self._ping_sent_at = 0.0
        elif isinstance(event, ws.CloseReceived):
            self.conn.write(protocol.send_close())
            self._finish(event.code, event.reason)
        elif isinstance(event, ws.ConnectionFailed):
            self.conn.write(event.close_frame)
            self._finish(event.code, event.reason)

    def _take_token(self) -> bool:
        now = time.monotonic()
        rate = self.config.message_rate
        self._rate_tokens = min(rate, self._rate_tokens + (now - self._rate_at) * rate)
        self._rate_at = now
        if self._rate_tokens < 1:
            return False
        self._rate_tokens -= 1
        return True

    async def receive(self) -> str | bytes:
        while True:
            if self._inbox:
                message = self._inbox.popleft()
                if self._paused and len(self._inbox) < RECEIVE_QUEUE // 2:
                    self._paused = False
                    self.conn.resume_reading_for_body()
                return message
            if self.closed:
                raise WebSocketDisconnect(self.close_code or ABNORMAL_CLOSURE, self.close_reason)
            self._waiter = self.conn.loop.create_future()
            await self._waiter

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- writing -------------------------------------------------------------------------

    async def send(self, data: str | bytes) -> None:
        if self.closed or self.protocol is None or self.protocol.state is not ws.State.OPEN:
            raise WebSocketDisconnect(self.close_code or ABNORMAL_CLOSURE, self.close_reason)
        frame = (
            self.protocol.send_text(data)
            if isinstance(data, str)
            else self.protocol.send_bytes(data)
        )
        self.server.websocket_sent += 1
        self.conn.write(frame)
        if self.conn.write_paused:
            await self.conn.drain()

    def send_nowait(self, data: str | bytes) -> bool:
        if self.closed or self.protocol is None or self.protocol.state is not ws.State.OPEN:
            return True  # leaving anyway
        transport = self.conn.transport
        if (
            transport is not None
            and transport.get_write_buffer_size() > self.config.max_send_buffer
        ):
            return False
        frame = (
            self.protocol.send_text(data)
            if isinstance(data, str)
            else self.protocol.send_bytes(data)
        )
        self.server.websocket_sent += 1
        self.conn.write(frame)
        return True

    # -- closing -------------------------------------------------------------------------

    async def close(self, code: int, reason: str) -> None:
        """Our close: send the frame, wait (bounded) for the peer's, then hang up.

        Before ``accept`` there is no WebSocket yet: the caller answers HTTP instead.
        """
        if self.closed or self.protocol is None:
            self.close_code = self.close_code or code
            return
        self.close_nowait(code, reason)
        if self.closed:
            return
        self._closed_waiter = self.conn.loop.create_future()
        try:
            await asyncio.wait_for(asyncio.shield(self._closed_waiter), self.config.close_timeout)
        except TimeoutError:
            self._finish(code, reason)

    def close_nowait(self, code: int, reason: str) -> None:
        protocol = self.protocol
        if self.closed or protocol is None or protocol.state is not ws.State.OPEN:
            return
        self.close_code, self.close_reason = code, reason
        self.conn.write(protocol.send_close(code, reason))  # now CLOSING: the peer answers
        # No more pings after our close frame; hang up if the peer's does not come.
        self._set_timer(self.config.close_timeout, self._close_timed_out)

    def _close_timed_out(self) -> None:
        self._timer = None
        self._finish(self.close_code or ABNORMAL_CLOSURE, self.close_reason)

    def going_away(self) -> None:
        """The server stops: close 1001 (the peer has ``close_timeout`` to answer)."""
        if self.accepted:
            self.close_nowait(GOING_AWAY, "server shutting down")

    def _fail(self, code: int, reason: str) -> None:
        self.close_nowait(code, reason)
        self._finish(code, reason)

    def _finish(self, code: int, reason: str) -> None:
        """The session is over: wake everyone, hang up once what is queued is sent."""
        if self.closed:
            return
        self.closed = True
        self.close_code = self.close_code or code
        self.close_reason = self.close_reason or reason
        if self._timer is not None:
            self._timer.cancel()
        self._wake()
        waiter = self._closed_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self.conn.close()

    def _abort(self) -> None:
        self.closed = True
        self.close_code = ABNORMAL_CLOSURE
        self._wake()
        self.conn.abort()

    def connection_lost(self) -> None:
        """The TCP connection is gone (whoever closed it)."""
        if not self.closed:
            self.closed = True
            self.close_code = self.close_code or ABNORMAL_CLOSURE
        if self._timer is not None:
            self._timer.cancel()
        self._wake()
        waiter = self._closed_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- keepalive -----------------------------------------------------------------------

    def _set_timer(self, delay: float, callback: Callable[[], None]) -> None:
        """The session's one timer: keepalive while open, then the close deadline."""
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.conn.loop.call_later(delay, callback)

    def _arm_keepalive(self) -> None:
        interval = self.config.ping_interval
        if interval > 0:
            self._set_timer(min(interval, 1.0), self._keepalive)

    def _keepalive(self) -> None:
        if self.closed or self.protocol is None or self.protocol.state is not ws.State.OPEN:
            return
        now = time.monotonic()
        if self._ping_sent_at and now - self._ping_sent_at > self.config.ping_timeout:
            self._fail(INTERNAL_ERROR, "keepalive ping timeout")
            return
        if not self._ping_sent_at and now - self._last_seen >= self.config.ping_interval:
            self._ping_sent_at = now
            self.conn.write(self.protocol.send_ping(b"covetd"))
        self._timer = self.conn.loop.call_later(
            min(self.config.ping_interval, self.config.ping_timeout, 1.0), self._keepalive
        )
