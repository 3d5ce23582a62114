"""The ASGI lifespan protocol: an ASGI app's startup and shutdown, once per worker."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from .asgi_common import ASGI_VERSION, AsgiApp, Message

__all__ = ["AsgiLifespan", "LifespanFailure"]

error_log = logging.getLogger("covetd.error")


class LifespanFailure(Exception):
    """The application's lifespan startup failed; the message is the app's."""


class AsgiLifespan:
    """Drives the ASGI lifespan protocol for one worker.

    An app that raises on the lifespan scope before answering is taken as not
    supporting lifespan (like uvicorn's ``--lifespan auto``); an app that answers
    ``lifespan.startup.failed`` stops the worker with its message.
    """

    def __init__(self, app: AsgiApp, startup_timeout: float | None = None) -> None:
        self._app = app
        self._timeout = startup_timeout
        self.state: dict[str, Any] = {}
        self.supported = True
        self._inbox: asyncio.Queue[Message] = asyncio.Queue()
        self._outbox: asyncio.Queue[Message] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def startup(self) -> None:
        scope = {"type": "lifespan", "asgi": ASGI_VERSION, "state": self.state}
        self._task = asyncio.get_running_loop().create_task(self._run(scope))
        await self._inbox.put({"type": "lifespan.startup"})
        reply = await asyncio.wait_for(self._outbox.get(), self._timeout)
        if reply["type"] == "lifespan.startup.failed":
            raise LifespanFailure(reply.get("message") or "lifespan startup failed")

    async def shutdown(self, timeout: float | None = None) -> None:
        if not self.supported or self._task is None or self._task.done():
            return
        await self._inbox.put({"type": "lifespan.shutdown"})
        reply = await asyncio.wait_for(self._outbox.get(), timeout)
        if reply["type"] == "lifespan.shutdown.failed":
            error_log.error("lifespan shutdown failed: %s", reply.get("message", ""))

    async def _run(self, scope: dict[str, Any]) -> None:
        answered = False

        async def send(message: Message) -> None:
            nonlocal answered
            answered = True
            await self._outbox.put(message)

        try:
            await self._app(scope, self._inbox.get, send)
        except BaseException as exc:
            if not answered:
                self.supported = False
                error_log.info(
                    "the application does not support ASGI lifespan (%s: %s)",
                    type(exc).__name__,
                    exc,
                )
                await self._outbox.put({"type": "lifespan.startup.complete"})
            elif not isinstance(exc, asyncio.CancelledError):
                error_log.exception("exception in the lifespan protocol")
                await self._outbox.put({"type": "lifespan.shutdown.failed", "message": repr(exc)})
            if isinstance(exc, asyncio.CancelledError):
                raise
        else:
            if not answered:
                self.supported = False
                await self._outbox.put({"type": "lifespan.startup.complete"})
