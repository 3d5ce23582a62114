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
otherwise queues it for the driver. A cancellation of the driver task that arrives
while a suspended request waits in the queue belongs to that request (its
``asyncio.timeout`` fired before the driver resumed it): it is thrown into the
request, as a Task would do, and the driver goes on.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections import deque
from collections.abc import Callable, Coroutine, Generator
from typing import Any, Final

FirstStep = Callable[[contextvars.Context, Coroutine[Any, Any, Any]], tuple[bool, Any]]
_c_first_step: FirstStep | None
try:  # the native build's C helper (setup.py): a finished coroutine raises nothing
    from ._first_step import first_step as _c_first_step
except ImportError:
    _c_first_step = None

__all__ = ["ConnectionDriver"]

error_log = logging.getLogger("covetd.error")

# Final: the native build reads these as C globals, not from the module's dict.
_enter_task: Final = asyncio.tasks._enter_task
_leave_task: Final = asyncio.tasks._leave_task
_copy_context: Final = contextvars.copy_context
_C_FIRST_STEP: Final[FirstStep | None] = _c_first_step
# asyncio.current_task is a Python wrapper around a lookup in this dict (3.11, 3.12);
# where it is gone, ask asyncio.
_tasks_by_loop: Any = getattr(asyncio.tasks, "_current_tasks", None)
_current_tasks: Final[Any] = (
    _tasks_by_loop
    if _tasks_by_loop is not None
    else type("_CurrentTasks", (), {"get": staticmethod(asyncio.current_task)})()
)

Request = Coroutine[Any, Any, Any]
Done = Callable[[Any], None]
Failed = Callable[[BaseException], None]


class _Resume:
    """Await ``coro`` from wherever it is (not started, or suspended on ``yielded``),
    running each of its steps inside ``context``; then report to ``done``/``failed``."""

    __slots__ = ("context", "coro", "done", "failed", "started", "thrown", "yielded")

    def __init__(
        self,
        coro: Request,
        context: contextvars.Context,
        yielded: Any,
        started: bool,
        done: Done,
        failed: Failed,
    ) -> None:
        self.coro = coro
        self.context = context
        self.yielded = yielded
        self.started = started
        self.done = done
        self.failed = failed
        self.thrown: BaseException | None = None  # a cancellation to resume it with

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, run = self.coro, self.context.run
        try:
            if self.thrown is not None:
                value = run(coro.throw, self.thrown)
            else:
                value = self.yielded if self.started else run(coro.send, None)
            while True:
                try:
                    sent = yield value
                except BaseException as exc:  # thrown into us by the task: cancellation
                    value = run(coro.throw, exc)
                else:
                    value = run(coro.send, sent)
        except StopIteration as stop:
            return stop.value


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

    def start(self, coro: Request, done: Done, failed: Failed) -> None:
        """Run ``coro`` now if possible; if it suspends, the driver task continues it.

        ``done(result)`` or ``failed(exception)`` is called when it ends, outside the
        request's context; neither may raise.
        """
        loop = self._loop
        task = self._task
        if task is None or task.done():
            task = self._new_task()
        context = _copy_context()
        if _current_tasks.get(loop) is not None:  # called from a task: queue it
            self._enqueue(_Resume(coro, context, None, False, done, failed))
            return
        _enter_task(loop, task)
        try:
            if _C_FIRST_STEP is not None:  # compiled: ~4,000 instructions less per request
                finished, value = _C_FIRST_STEP(context, coro)
            else:
                finished, value = False, context.run(coro.send, None)
        except StopIteration as stop:  # (interpreted only) the coroutine finished
            finished, value = True, stop.value
        except BaseException as exc:
            _leave_task(loop, task)
            failed(exc)
            return
        _leave_task(loop, task)
        if finished:
            done(value)
        else:
            self._enqueue(_Resume(coro, context, value, True, done, failed))

    def _new_task(self) -> asyncio.Task[None]:
        task = self._task = self._loop.create_task(self._drive())
        task.add_done_callback(self._task_ended)
        return task

    def _task_ended(self, task: asyncio.Task[None]) -> None:
        """A driver cancelled before its first step leaves its request queued: the
        cancellation was that request's (see the module doc); a new driver resumes it
        with the cancellation thrown in."""
        if task is self._task and self._queue and not self._closed:
            if task.cancelled():
                self._queue[0].thrown = asyncio.CancelledError()
            self._new_task()

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
        # A cancellation ends the driver (shutdown, or the loop closing) after telling
        # the request it was running; ``start`` makes a new driver if one is needed.
        queue = self._queue
        while not self._closed:
            if not queue:
                self._waiter = self._loop.create_future()
                try:
                    await self._waiter
                except asyncio.CancelledError as exc:
                    if not queue:
                        raise
                    # Aimed at the request queued meanwhile: it ran its first step
                    # under this task (``asyncio.timeout`` took it as the current
                    # task) and its deadline came before we resumed it.
                    queue[0].thrown = exc
                continue
            item = queue.popleft()
            try:
                result = await item
            except BaseException as exc:
                item.failed(exc)
                if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt | SystemExit):
                    raise
            else:
                item.done(result)
