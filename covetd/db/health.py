"""Is a pool's database reachable? One state per pool, changed only by evidence.

Invariants:

- The state is ``up`` until a connection attempt fails (``unreachable``), and ``down``
  until one succeeds (``reachable``): a failed connect is the only evidence of an
  outage, a successful connect or probe the only evidence of recovery. An exhausted
  pool is busy, not down; one broken connection is a broken connection, not an outage
  (the next connect decides).
- Each change is logged once, as it happens ("down" with the reason, as an error;
  "up again", as a warning): never once per request, however many requests fail in
  between.
- While down, requests fail fast without touching the network (the pool checks
  ``up``), and a single watcher task retries in the background, 0.1 s after the
  failure and then with doubling delays capped at ``MAX_RETRY_DELAY``: the pool
  recovers (and ``/readyz`` turns ready) even when no request comes in, and a
  database that is coming back is not stormed by every waiting request at once.
- A connection that closes by itself (the server restarted, the network broke) is
  news even when no request is running: ``check()`` tries one new connection at once,
  so an idle worker learns of an outage too (and its ``/readyz`` says so).
- Before ``arm()`` (while an eager pool makes its first connections) failures are
  not reported here: the worker fails its boot with its own message instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

__all__ = ["MAX_RETRY_DELAY", "Health", "describe"]

error_log = logging.getLogger("covetd.error")

FIRST_RETRY_DELAY = 0.1
MAX_RETRY_DELAY = 1.0


def describe(error: BaseException) -> str:
    """``ConnectionRefusedError: [Errno 111] ...`` on one line."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class Health:
    """The reachability of one pool's database (see the module docstring)."""

    __slots__ = ("_armed", "_checker", "_closed", "_notify", "_probe", "_watcher", "name", "up")

    def __init__(
        self,
        name: str,
        probe: Callable[[], Awaitable[None]],
        notify: Callable[[bool], None],
    ) -> None:
        self.name = name
        self.up = True
        self._probe = probe  # raises unless the database answered
        self._notify = notify
        self._armed = False
        self._closed = False
        self._watcher: asyncio.Task[None] | None = None
        self._checker: asyncio.Task[None] | None = None

    def arm(self) -> None:
        self._armed = True

    def unreachable(self, error: BaseException) -> None:
        """A connection attempt failed with ``error``."""
        if not self.up or not self._armed or self._closed:
            return
        self.up = False
        error_log.error("database pool %r is down: %s", self.name, describe(error))
        self._notify(False)
        self._watcher = asyncio.get_running_loop().create_task(self._watch())

    def reachable(self) -> None:
        """A connection attempt (or a probe) succeeded."""
        if self.up:
            return
        self.up = True
        # (as loud as a warning, so that whoever sees the "down" line sees this one)
        error_log.warning("database pool %r is up again", self.name)
        self._notify(True)

    def check(self) -> None:
        """Something looks wrong (a connection was lost): test now, in the background."""
        if self.up and self._armed and not self._closed and self._checker is None:
            self._checker = asyncio.get_running_loop().create_task(self._check())

    async def _check(self) -> None:
        try:
            await self._probe()
        except Exception:  # a failed attempt reported itself (unreachable)
            pass
        finally:
            self._checker = None

    async def _watch(self) -> None:
        delay = FIRST_RETRY_DELAY
        while not self.up and not self._closed:
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_DELAY)
            try:
                await self._probe()
            except Exception:  # the attempt itself reported why; try again later
                continue
            self.reachable()

    async def close(self) -> None:
        """Stop watching (the pool is closing)."""
        self._closed = True
        for task in (self._watcher, self._checker):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._watcher = self._checker = None
