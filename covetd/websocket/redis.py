"""The ``redis`` broadcast backend: every covetd instance sharing one Redis.

Rooms map to pub/sub channels (``covetd:ws:<room>``); a worker subscribes to a room's
channel while it has members in it. Each message carries its origin (host, pid) so a
worker does not deliver its own broadcasts twice (they were delivered locally when
published). One Redis connection publishes, in order, so a publisher's messages
arrive in the order it sent them. ``subscribe`` returns once Redis confirmed the
subscription (bounded by ``SUBSCRIBE_TIMEOUT``): a message published after a join
returned reaches the new member, wherever it was published.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .hub import Hub

__all__ = ["RedisBackend"]

error_log = logging.getLogger("covetd.error")

PREFIX = "covetd:ws:"
SUBSCRIBE_TIMEOUT = 5.0


class RedisBackend:
    """Broadcast through Redis pub/sub."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.origin = f"{socket.gethostname()}:{os.getpid()}".encode()
        self._redis: Any = None
        self._pubsub: Any = None
        self._listener: asyncio.Task[None] | None = None
        self._hub: Hub | None = None
        self._confirmations: dict[bytes, list[asyncio.Future[None]]] = {}
        self._stopping = False

    async def start(self, hub: Hub) -> None:
        import redis.asyncio as aioredis  # the optional `redis` extra

        self._hub = hub
        self._redis = aioredis.from_url(self.url)
        self._pubsub = self._redis.pubsub()
        await self._pubsub.subscribe(PREFIX + "__covetd__")  # keeps listen() alive
        self._listener = asyncio.get_running_loop().create_task(self._listen())
        self._listener.add_done_callback(self._listener_ended)

    async def publish(self, room: str, message: str | bytes) -> None:
        kind = b"t" if isinstance(message, str) else b"b"
        payload = message.encode("utf-8") if isinstance(message, str) else bytes(message)
        await self._redis.publish(PREFIX + room, self.origin + b"\n" + kind + payload)

    async def subscribe(self, room: str) -> None:
        channel = (PREFIX + room).encode("utf-8")
        confirmed = asyncio.get_running_loop().create_future()
        self._confirmations.setdefault(channel, []).append(confirmed)
        try:
            await self._pubsub.subscribe(channel)
            await asyncio.wait_for(asyncio.shield(confirmed), SUBSCRIBE_TIMEOUT)
        except TimeoutError:
            error_log.warning(
                "redis broadcast backend: no confirmation of the subscription to %r", room
            )
        finally:
            waiting = self._confirmations.get(channel, [])
            if confirmed in waiting:
                waiting.remove(confirmed)
            if not waiting:
                self._confirmations.pop(channel, None)

    async def unsubscribe(self, room: str) -> None:
        await self._pubsub.unsubscribe(PREFIX + room)

    async def _listen(self) -> None:
        assert self._hub is not None
        while True:
            try:
                message = await self._pubsub.get_message(timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error_log.warning("redis broadcast backend: %s; retrying", exc)
                await asyncio.sleep(1.0)
                continue
            if message is None:
                continue
            if message.get("type") == "subscribe":
                self._confirm(bytes(message["channel"]))
                continue
            if message.get("type") != "message":
                continue
            origin, _, rest = bytes(message["data"]).partition(b"\n")
            if origin == self.origin or not rest:
                continue
            room = bytes(message["channel"]).decode("utf-8").removeprefix(PREFIX)
            body = rest[1:]
            self._hub.deliver(room, body.decode("utf-8") if rest[:1] == b"t" else body)

    def _listener_ended(self, task: asyncio.Task[None]) -> None:
        """Only ``stop`` ends the listener; anything else loses broadcasts: say so."""
        if self._stopping:
            return
        reason = "cancelled" if task.cancelled() else repr(task.exception())
        error_log.error("redis broadcast backend: the listener ended (%s)", reason)

    def _confirm(self, channel: bytes) -> None:
        for confirmed in self._confirmations.pop(channel, []):
            if not confirmed.done():
                confirmed.set_result(None)

    async def stop(self) -> None:
        self._stopping = True
        if self._listener is not None:
            self._listener.cancel()
        if self._pubsub is not None:
            await self._pubsub.aclose()
        if self._redis is not None:
            await self._redis.aclose()
