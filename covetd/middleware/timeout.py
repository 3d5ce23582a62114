"""Timeout: a deadline on the handler; past it the handler is cancelled and the client
gets 503.

The deadline covers everything inside this middleware until a Response is returned:
inner middleware, routing, the handler and reading the request body. The handler is
cancelled with ``asyncio.timeout``, so its ``finally`` blocks and ``async with`` exits
run (database connections go back to their pools). A handler that catches the
cancellation and returns a Response anyway gets its Response sent.

Per-route deadlines: ``routes`` maps path patterns (fnmatch, like the pipeline's
``include``: ``*`` also matches ``/``) to seconds, or to ``null`` for none; the first
pattern that matches wins, else ``timeout`` applies.

Not covered: a *streaming* Response's body. Once the head is returned the middleware is
done; the engine's send timeouts and the client's disconnect end a stalled stream, and
an app that streams must bound its own generator.
"""

from __future__ import annotations

import asyncio
import fnmatch
import math
import re
import time
from collections.abc import Awaitable, Coroutine, Generator, Mapping
from dataclasses import dataclass
from types import CoroutineType
from typing import Any

from ..app.requests import Request
from ..app.responses import PlainTextResponse, Response
from ..config.errors import InvalidValue, show
from ..config.fields import setting
from ..config.types import Duration, Optional
from .base import Handler, Middleware
from .option_types import MappingOf

__all__ = ["TimeoutMiddleware"]


class TimeoutMiddleware(Middleware):
    """Cancel the handler and answer 503 when it runs past its deadline."""

    name = "timeout"

    @dataclass(frozen=True)
    class Options:
        timeout: float | None = setting(
            Optional(Duration(positive=True)),
            30,
            "Deadline in seconds for routes not in routes; null: none.",
        )
        routes: Mapping[str, float | None] = setting(
            MappingOf(
                Optional(Duration(positive=True)),
                'a mapping of path patterns to seconds or null ({"/reports/*": 120})',
            ),
            {},
            "Per-route deadlines: path pattern -> seconds (null: none); first match wins.",
        )
        retry_after: float | None = setting(
            Optional(Duration()),
            None,
            "Retry-After seconds on the 503 (rounded up); null sends none.",
        )

        def __post_init__(self) -> None:
            for pattern in self.routes:
                if not pattern.startswith("/"):
                    raise InvalidValue(
                        f'{show(pattern)}: a path pattern starts with "/"', key="routes"
                    )

    options: Options

    def __init__(self, app: Handler, options: Options | None = None) -> None:
        super().__init__(app, options)
        # fnmatchcase(path, pattern) is translate(pattern)'s match, compiled once here.
        self.routes = tuple(
            (re.compile(fnmatch.translate(pattern)).match, seconds)
            for pattern, seconds in self.options.routes.items()
        )
        retry = self.options.retry_after
        self.answer_headers = {} if retry is None else {"retry-after": str(math.ceil(retry))}

    def deadline_for(self, path: str) -> float | None:
        for matches, seconds in self.routes:
            if matches(path):
                return seconds
        return self.options.timeout

    async def __call__(self, request: Request) -> Response:
        seconds = self.deadline_for(request.path)
        if seconds is None:
            return await self.app(request)
        started = time.monotonic()
        inner = self.app(request)
        if type(inner) is not CoroutineType:  # some other awaitable: the plain way
            return await self._within(seconds, inner)
        # Run the first step here. A deadline can only fire while the loop runs, that
        # is once the handler suspends; most never do (the engine runs them eagerly),
        # and for those a timer would be set and cancelled for nothing. One that
        # suspends gets the deadline from here on, counted from when it started, as
        # asyncio.timeout(seconds) around ``await`` would have.
        try:
            suspended_on = inner.send(None)
        except StopIteration as done:
            response: Response = done.value
            return response
        remaining = seconds - (time.monotonic() - started)
        return await self._within(remaining, _Started(inner, suspended_on))

    async def _within(self, seconds: float, handler: Awaitable[Response]) -> Response:
        deadline = asyncio.timeout(seconds)
        try:
            async with deadline:
                return await handler
        except TimeoutError:
            if not deadline.expired():
                raise  # the handler's own TimeoutError, not our deadline
            return PlainTextResponse(
                "Service Unavailable: the request timed out\n", 503, self.answer_headers
            )


class _Started:
    """Awaits a coroutine whose first step already ran (it yielded ``suspended_on``):
    what ``await`` does, from its second step on (sends, throws and close pass through)."""

    __slots__ = ("coro", "suspended_on")

    def __init__(self, coro: Coroutine[Any, Any, Response], suspended_on: Any) -> None:
        self.coro = coro
        self.suspended_on = suspended_on

    def __await__(self) -> Generator[Any, Any, Response]:
        coro, value = self.coro, self.suspended_on
        while True:
            try:
                try:
                    sent = yield value
                except GeneratorExit:
                    coro.close()
                    raise
                except BaseException as exc:  # a cancellation, thrown in by the task
                    value = coro.throw(exc)
                else:
                    value = coro.send(sent)
            except StopIteration as done:
                response: Response = done.value
                return response
