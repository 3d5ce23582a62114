"""What a middleware is: a callable that wraps the next handler.

covetd's middleware works on covetd's own ``Request``/``Response`` (DESIGN.md §1), so
one chain serves a Covet app and an ASGI app alike (the ASGI app sits behind an
endpoint that turns it into a ``Request -> Response`` handler). A middleware is built
once, when a worker starts, with the next handler and its validated options::

    class Timing(Middleware):
        @dataclass(frozen=True)
        class Options:
            header: str = setting(Text(), "server-timing", "Header to set.")

        async def __call__(self, request: Request) -> Response:
            started = time.perf_counter()
            response = await self.app(request)
            response.headers[self.options.header] = f"app;dur={...}"
            return response

Options are a dataclass of settings declared with ``covetd.config.fields.setting`` (the
same machinery as the config file's keys, so errors read the same and docs can be
generated); a middleware without options leaves ``Options`` as ``NoOptions``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, ClassVar

from ..app.requests import Request
from ..app.responses import Response

__all__ = ["Handler", "Middleware", "NoOptions"]

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


@dataclass(frozen=True)
class NoOptions:
    """The options of a middleware that takes none."""


class Middleware:
    """Base class: ``self.app`` is the next handler, ``self.options`` the options."""

    Options: ClassVar[type[Any]] = NoOptions
    #: The name used in YAML for built-ins (``cors``); import path for others.
    name: ClassVar[str] = ""

    def __init__(self, app: Handler, options: Any = None) -> None:
        self.app = app
        self.options = options if options is not None else self.Options()

    async def __call__(self, request: Request) -> Response:
        return await self.app(request)
