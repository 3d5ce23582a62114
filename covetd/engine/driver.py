"""Run each request's coroutine eagerly; continue it in one task per connection.

Why: on CPython 3.11, creating and scheduling an asyncio Task costs more than the rest
of a small request's handling put together. So a request's coroutine is started right
away, inside the connection's callback. Most handlers finish without ever suspending;
their response is then written in that same callback, as a hand-written protocol
would. A coroutine that does suspend is handed to the connection's *driver* task,
which resumes it until it finishes.

What a handler sees is what a task-per-request server gives it:

- ``asyncio.current_task()`` is the driver task, also during the eager first step
  (entered with asyncio's own ``_enter_task``, as 3.12's eager tasks do), so
  ``asyncio.timeout``, ``wait_for`` and anyio cancel scopes work; a cancellation aimed
  at it reaches the suspended handler, which is exactly what the driver is awaiting;
- each request runs every one of its steps in its own copy of the context, so a
  context variable set by one request never leaks into the next;
- requests of one connection never overlap (the protocol starts the next one only
  when the previous response is complete), so one driver per connection suffices.

Invariant: the driver task runs at most one request coroutine at a time; ``start``
runs a coroutine eagerly only when no task is current (a protocol callback), and
otherwise queues it for the driver.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections import deque
from collections.abc import Coroutine, Generator
from typing import Any

__all__ = ["ConnectionDriver"]

error_log = logging.getLogger("covetd.error")

_enter_task = asyncio.tasks._enter_task
_leave_task = asyncio.tasks._leave_task
# asyncio.current_task is a Python wrapper around a lookup in this dict (3.11, 3.12);
# where it is gone, ask asyncio.
_current_tasks: Any = getattr(asyncio.tasks, "_current_tasks", None)
if _current_tasks is None:
    _current_tasks = type("_CurrentTasks", (), {"get": staticmethod(asyncio.current_task)})()

Request = Coroutine[Any, Any, None]


class _Resume:
    """Await ``coro`` from wherever it is (not started, or suspended on ``yielded``),
    running each of its steps inside ``context``."""

    __slots__ = ("context", "coro", "started", "yielded")

    def __init__(
        self, coro: Request, context: contextvars.Context, yielded: Any, started: bool
    ) -> None:
        self.coro = coro
        self.context = context
        self.yielded = yielded
        self.started = started

    def __await__(self) -> Generator[Any, Any, None]:
        coro, run = self.coro, self.context.run
        try:
            value = self.yielded if self.started else run(coro.send, None)
            while True:
                try:
                    sent = yield value
                except BaseException as exc:  # thrown into us by the task: cancellation
                    value = run(coro.throw, exc)
                else:
                    value = run(coro.send, sent)
        except StopIteration:
            return


class ConnectionDriver:
    """Runs one connection's request coroutines, one at a time."""

    __slots__ = ("_closed", "_loop", "_queue", "_task", "_waiter")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._task: asyncio.Task[None] | None = None
        self._queue: deque[_Resume] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The driver task (None until the first request)."""
        return self._task

    def start(self, coro: Request) -> None:
        """Run ``coro`` now if possible; if it suspends, the driver task continues it."""
        task = self._task
        if task is None or task.done():
            task = self._task = self._loop.create_task(self._drive())
        if _current_tasks.get(self._loop) is not None:
            self._enqueue(_Resume(coro, contextvars.copy_context(), None, False))
            return
        context = contextvars.copy_context()
        _enter_task(self._loop, task)
        try:
            yielded = context.run(coro.send, None)
        except StopIteration:
            return
        except BaseException:
            error_log.exception("request coroutine failed outside its handler")
            return
        finally:
            _leave_task(self._loop, task)
        self._enqueue(_Resume(coro, context, yielded, True))

    def _enqueue(self, item: _Resume) -> None:
        self._queue.append(item)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def close(self) -> None:
        """The connection is gone: stop once the request in progress (if any) is done."""
        self._closed = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _drive(self) -> None:
        # A cancellation ends the driver (shutdown, or the loop closing); ``start``
        # makes a new one if the connection is still in use.
        queue = self._queue
        while not self._closed:
            if not queue:
                self._waiter = self._loop.create_future()
                await self._waiter
                continue
            try:
                await queue.popleft()
            except Exception:
                error_log.exception("request coroutine failed outside its handler")
