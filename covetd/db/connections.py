"""The connections of one pool: an idle stack, a bounded count, a queue of waiters.

Mechanism only (no timeouts, errors or health: ``pool.py`` decides those). Why not
asyncpg's own ``Pool``: lending and taking back one of its connections costs about
as much CPU as the query itself (a Task per release through ``asyncio.shield``, a
proxy object and an inactivity timer per lend, and a reset round trip by default);
here, taking an idle connection and giving it back are plain calls that never
suspend.

Invariants:

- ``size`` counts every connection that is lent, idle, or being opened in a reserved
  slot, and never exceeds ``max_size``.
- A waiter exists only while no connection is idle: a connection given back goes to
  the first waiter still waiting, else on top of the idle stack. The stack is LIFO:
  warm connections are reused, cold ones sink to the bottom, where the sweeper
  closes those idle longer than ``lifetime`` (down to ``min_size`` connections).
- A slot freed by a broken connection goes to the first waiter (which opens a new
  connection in it: ``wait()`` returns None), else is given up.
- Once ``closing``, nothing is lent any more; connections given back are closed, and
  ``drained`` is set when ``size`` reaches 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from typing import Any

__all__ = ["Connections"]

Connection = Any  # an asyncpg.Connection (kept abstract: this file never queries)


class Connections:
    """Bookkeeping of one pool's connections (see the module docstring)."""

    def __init__(self, min_size: int, max_size: int, lifetime: float) -> None:
        self.min_size = min_size
        self.max_size = max_size
        self.lifetime = lifetime  # 0: idle connections are kept forever
        self.size = 0
        self.idle: list[tuple[Connection, float]] = []  # (connection, idle since)
        self.lent: set[Connection] = set()
        self.waiters: deque[asyncio.Future[Connection | None]] = deque()
        self.closing = False
        self.drained = asyncio.Event()
        self._closers: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.TimerHandle | None = None
        if lifetime > 0:
            self._arm_sweeper()

    # -- lending -----------------------------------------------------------------------

    def take_idle(self) -> Connection | None:
        """The most recently used idle connection that is still open, or None."""
        idle = self.idle
        while idle:
            conn = idle.pop()[0]
            if not conn.is_closed():
                self.lent.add(conn)
                return conn
            self.size -= 1
        return None

    def reserve(self) -> bool:
        """Take a slot to open a connection in, if the pool may grow."""
        if self.size < self.max_size and not self.closing:
            self.size += 1
            return True
        return False

    async def wait(self) -> Connection | None:
        """Wait for a connection given back (lent to us), or a freed slot (None)."""
        future: asyncio.Future[Connection | None] = asyncio.get_running_loop().create_future()
        self.waiters.append(future)
        try:
            return await future
        except BaseException:
            if future.done() and not future.cancelled() and future.exception() is None:
                handed = future.result()  # handed to us as we were cancelled: pass it on
                if handed is None:
                    self.release_slot()
                else:
                    self.give_back(handed)
            else:
                with contextlib.suppress(ValueError):
                    self.waiters.remove(future)
            raise

    def opened(self, conn: Connection) -> None:
        """A connection was opened in a reserved slot (it is lent to the opener)."""
        self.lent.add(conn)

    def release_slot(self) -> None:
        """A reserved or lent slot holds no connection any more."""
        if not self.closing:
            waiters = self.waiters
            while waiters:
                future = waiters.popleft()
                if not future.done():
                    future.set_result(None)
                    return
        self.size -= 1
        if self.closing and self.size == 0:
            self.drained.set()

    def give_back(self, conn: Connection) -> None:
        """A lent connection comes back (open, in a clean session; or closed)."""
        self.lent.discard(conn)
        if conn.is_closed():
            self.release_slot()
            return
        if self.closing:
            self._close_later(conn)
            self.release_slot()
            return
        waiters = self.waiters
        while waiters:
            future = waiters.popleft()
            if not future.done():
                self.lent.add(conn)
                future.set_result(conn)
                return
        self.idle.append((conn, time.monotonic()))

    def forget(self, conn: Connection) -> bool:
        """``conn`` closed by itself (the server went away, or the network broke):
        drop it if it was idle. True if it was ours (idle or lent), not one that the
        pool was closing on purpose."""
        if conn in self.lent:
            return not self.closing
        for index, (idle, _) in enumerate(self.idle):
            if idle is conn:
                del self.idle[index]
                self.size -= 1
                return not self.closing
        return False

    # -- ageing and closing ------------------------------------------------------------

    def _arm_sweeper(self) -> None:
        delay = max(self.lifetime / 2, 0.05)
        self._sweeper = asyncio.get_running_loop().call_later(delay, self._sweep)

    def _sweep(self) -> None:
        """Close connections idle longer than ``lifetime``, oldest first."""
        cutoff = time.monotonic() - self.lifetime
        idle = self.idle
        while idle and idle[0][1] <= cutoff and self.size > self.min_size:
            conn = idle.pop(0)[0]
            self.size -= 1
            self._close_later(conn)
        self._arm_sweeper()

    def _close_later(self, conn: Connection) -> None:
        task = asyncio.get_running_loop().create_task(_close_quietly(conn))
        self._closers.add(task)
        task.add_done_callback(self._closers.discard)

    async def close(self, timeout: float, error: Callable[[], BaseException]) -> None:
        """Stop lending; close idle connections now and lent ones as they come back;
        past ``timeout``, cut whatever is left. Waiters get ``error()``."""
        self.closing = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        while self.waiters:
            future = self.waiters.popleft()
            if not future.done():
                future.set_exception(error())
        while self.idle:
            self._close_later(self.idle.pop()[0])
            self.size -= 1
        if self.size == 0:
            self.drained.set()
        try:
            await asyncio.wait_for(self.drained.wait(), timeout)
        except TimeoutError:
            for conn in list(self.lent):
                conn.terminate()
        closers = list(self._closers)
        if closers:
            _, pending = await asyncio.wait(closers, timeout=max(timeout, 0.1))
            for task in pending:
                task.cancel()


async def _close_quietly(conn: Connection) -> None:
    """Say goodbye to the server (Terminate message); cut the socket if that fails."""
    try:
        await conn.close(timeout=5)
    except Exception:
        conn.terminate()
