"""The ``postgres`` broadcast backend: every covetd instance sharing one PostgreSQL.

For deployments that already run PostgreSQL and not Redis. All rooms share one
``LISTEN`` channel (``covetd_ws``); the room travels in the payload and delivery
filters it, like the ``local`` backend. One connection publishes, in order, so a
publisher's messages arrive in the order it sent them (NOTIFYs of one session are
delivered in order). PostgreSQL caps a NOTIFY payload at 8000 bytes: a larger
message raises ``ValueError`` rather than being cut.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import socket
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .hub import Hub

__all__ = ["PostgresBackend"]

error_log = logging.getLogger("covetd.error")

CHANNEL = "covetd_ws"
MAX_PAYLOAD = 7999  # PostgreSQL's NOTIFY limit is 8000 bytes


class PostgresBackend:
    """Broadcast through PostgreSQL LISTEN/NOTIFY (asyncpg)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.origin = f"{socket.gethostname()}:{os.getpid()}"
        self._listen: Any = None
        self._publish: Any = None
        self._lock = asyncio.Lock()
        self._hub: Hub | None = None

    async def start(self, hub: Hub) -> None:
        import asyncpg

        self._hub = hub
        self._listen = await asyncpg.connect(self.url)
        self._publish = await asyncpg.connect(self.url)
        await self._listen.add_listener(CHANNEL, self._notified)

    async def publish(self, room: str, message: str | bytes) -> None:
        fields = {"o": self.origin, "r": room}
        if isinstance(message, str):
            fields["t"] = message
        else:
            fields["b"] = base64.b64encode(message).decode("ascii")
        payload = json.dumps(fields, separators=(",", ":"))
        if len(payload.encode("utf-8")) > MAX_PAYLOAD:
            raise ValueError(
                f"broadcast message too large for the postgres backend ({len(payload)} bytes;"
                f" NOTIFY carries at most {MAX_PAYLOAD})"
            )
        async with self._lock:  # one NOTIFY at a time: publisher order is kept
            await self._publish.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)

    async def subscribe(self, room: str) -> None:
        """Every worker hears every broadcast; rooms are filtered on delivery."""

    async def unsubscribe(self, room: str) -> None:
        """See ``subscribe``."""

    def _notified(self, connection: Any, pid: int, channel: str, payload: str) -> None:
        assert self._hub is not None
        try:
            fields = json.loads(payload)
            if fields["o"] == self.origin:
                return  # delivered locally when published
            room = fields["r"]
            message = fields["t"] if "t" in fields else base64.b64decode(fields["b"])
        except (ValueError, KeyError, TypeError):
            error_log.warning("postgres broadcast backend: ignoring a malformed notification")
            return
        self._hub.deliver(room, message)

    async def stop(self) -> None:
        for connection in (self._listen, self._publish):
            if connection is not None:
                await connection.close(timeout=2)
