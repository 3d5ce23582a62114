"""Rooms and broadcast for WebSockets.

``await ws.join("room")``, ``await app.hub.broadcast("room", message)`` from any
handler or background task. A message reaches the room's members on this worker
directly, and every other worker (``local`` backend: all workers of this host) or
every covetd instance (``redis``, ``postgres`` backends) through the backend; the API
is the same either way. Messages from one publisher arrive in the order it sent them;
a broadcast that starts after ``join`` returned reaches the new member; a broadcast
the backend refuses (too large for it, backend down) raises and reaches nobody.

A member that cannot keep up (its outgoing queue is full: the client reads slower
than the room talks) is dropped with close code 1013 ("try again later") instead of
slowing the room down.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..app.websockets import WebSocket

__all__ = ["Backend", "Hub"]

error_log = logging.getLogger("covetd.error")


class Backend(Protocol):
    """Carries broadcasts between workers or hosts."""

    async def start(self, hub: Hub) -> None: ...

    async def publish(self, room: str, message: str | bytes) -> None: ...

    async def subscribe(self, room: str) -> None: ...

    async def unsubscribe(self, room: str) -> None: ...

    async def stop(self) -> None: ...


class Hub:
    """The rooms of this worker's WebSockets."""

    def __init__(self) -> None:
        self.rooms: dict[str, set[WebSocket]] = {}
        self.backend: Backend | None = None
        self._subscribing: dict[str, asyncio.Future[None]] = {}

    async def join(self, room: str, ws: WebSocket) -> None:
        """Add ``ws`` to ``room``; once this returns, every broadcast to the room that
        starts afterwards, here or elsewhere, reaches it."""
        while (attempt := self._subscribing.get(room)) is not None:
            await asyncio.wait([attempt])  # a join before ours is subscribing the room
        members = self.rooms.get(room)
        if members is None:
            members = self.rooms[room] = set()
            if self.backend is not None:
                await self._subscribe(room)
        members.add(ws)

    async def _subscribe(self, room: str) -> None:
        """Subscribe the backend; on failure forget the (empty) room, so that the
        next join tries again."""
        assert self.backend is not None
        attempt = self._subscribing[room] = asyncio.get_running_loop().create_future()
        try:
            await self.backend.subscribe(room)
        except BaseException:
            if not self.rooms.get(room):
                self.rooms.pop(room, None)
            raise
        finally:
            del self._subscribing[room]
            attempt.set_result(None)

    async def leave(self, room: str, ws: WebSocket) -> None:
        members = self.rooms.get(room)
        if members is None:
            return
        members.discard(ws)
        if not members:
            del self.rooms[room]
            if self.backend is not None:
                await self.backend.unsubscribe(room)

    def count(self, room: str) -> int:
        """Members of ``room`` on this worker."""
        return len(self.rooms.get(room, ()))

    async def broadcast(self, room: str, message: str | bytes) -> None:
        """Send ``message`` to every member of ``room``, here and everywhere else.

        The backend publishes first: a message it refuses (``ValueError``: too large
        for it) or cannot send raises here and reaches nobody, not only this worker.
        """
        if self.backend is not None:
            await self.backend.publish(room, message)
        self.deliver(room, message)

    def deliver(self, room: str, message: str | bytes, exclude: Iterable[WebSocket] = ()) -> None:
        """Hand ``message`` to the members on this worker (never waits)."""
        members = self.rooms.get(room)
        if not members:
            return
        skip = set(exclude)
        for ws in list(members):
            if ws in skip:
                continue
            if not ws.send_nowait(message):
                self._drop_slow(room, ws)

    def _drop_slow(self, room: str, ws: WebSocket) -> None:
        error_log.info("dropping a WebSocket that cannot keep up with room %r", room)
        self.rooms.get(room, set()).discard(ws)
        ws.abandon(1013, "too slow for the room")
