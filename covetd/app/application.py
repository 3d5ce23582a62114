"""The Covet application: routes, exception handlers, lifespan hooks, state.

``handle(request) -> Response`` is the native entry point covetd's engine calls. The
same object is an ASGI 3 application (``__call__``), so ``uvicorn module:app`` serves
it too.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import Callable, Coroutine, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

from .datastructures import State
from .dispatch import Dispatcher, to_response
from .exceptions import ClientDisconnect, HTTPException
from .requests import Request
from .responses import JSONResponse, PlainTextResponse, Response
from .routing import (
    CALL_NOTHING,
    CALL_PARAMS,
    CALL_REQUEST,
    WEBSOCKET,
    Handler,
    Route,
    Router,
)
from .websockets import WebSocket, WebSocketDisconnect, WebSocketEnded, WebSocketState

__all__ = ["Covet"]

error_log = logging.getLogger("covetd.error")

Lifespan = Callable[["Covet"], AbstractAsyncContextManager[Mapping[str, Any] | None]]
ExceptionHandler = Callable[[Request, Exception], Any]
F = TypeVar("F", bound=Callable[..., Any])


class Covet:
    """A web application.

    >>> app = Covet()
    >>> @app.get("/users/{id:int}")
    ... async def user(request, id: int):
    ...     return {"id": id}
    """

    def __init__(self, *, lifespan: Lifespan | None = None, debug: bool = False) -> None:
        self.router = Router()
        self.state = State()
        #: The worker's database pools by name (``database:`` in the config), set by
        #: the worker before startup hooks run; ``db`` is the one named "default".
        self.databases: Mapping[str, Any] = {}
        self.debug = debug
        self._lifespan = lifespan
        self._lifespan_stack: contextlib.AsyncExitStack | None = None
        self._startup: list[Callable[[], Any]] = []
        self._shutdown: list[Callable[[], Any]] = []
        self._handlers_by_status: dict[int, ExceptionHandler] = {}
        self._handlers_by_class: dict[type[BaseException], ExceptionHandler] = {}
        self._middleware: list[tuple[type[Any], Any]] = []
        #: The native entry point: routing (``Dispatcher``), wrapped by
        #: ``add_middleware``'s middleware.
        self._dispatch = Dispatcher(self).dispatch
        self.handle: Callable[[Request], Coroutine[Any, Any, Response]] = self._dispatch

    # -- routes (delegated to the app's router) ----------------------------------------

    def route(
        self, path: str, methods: tuple[str, ...] | list[str] = ("GET",), name: str | None = None
    ) -> Callable[[F], F]:
        return self.router.route(path, methods, name)  # type: ignore[return-value]

    def get(self, path: str, name: str | None = None) -> Callable[[F], F]:
        return self.router.get(path, name)  # type: ignore[return-value]

    def post(self, path: str, name: str | None = None) -> Callable[[F], F]:
        return self.router.post(path, name)  # type: ignore[return-value]

    def put(self, path: str, name: str | None = None) -> Callable[[F], F]:
        return self.router.put(path, name)  # type: ignore[return-value]

    def patch(self, path: str, name: str | None = None) -> Callable[[F], F]:
        return self.router.patch(path, name)  # type: ignore[return-value]

    def delete(self, path: str, name: str | None = None) -> Callable[[F], F]:
        return self.router.delete(path, name)  # type: ignore[return-value]

    def head(self, path: str, name: str | None = None) -> Callable[[F], F]:
        return self.router.head(path, name)  # type: ignore[return-value]

    def options(self, path: str, name: str | None = None) -> Callable[[F], F]:
        return self.router.options(path, name)  # type: ignore[return-value]

    def add_route(
        self,
        path: str,
        endpoint: Handler,
        methods: tuple[str, ...] | list[str] = ("GET",),
        name: str | None = None,
    ) -> Route:
        return self.router.add_route(path, endpoint, methods, name)

    def websocket(self, path: str, name: str | None = None) -> Callable[[F], F]:
        """Register a WebSocket handler: ``async def handler(ws, **path_params)``."""
        return self.router.route(path, (WEBSOCKET,), name)  # type: ignore[return-value]

    @property
    def hub(self) -> Any:
        """Rooms and broadcast for this app's WebSockets (see ``covetd.websocket``)."""
        hub = self.__dict__.get("_hub")
        if hub is None:
            from ..websocket.hub import Hub

            hub = self.__dict__["_hub"] = Hub()
        return hub

    def include_router(self, router: Router, prefix: str = "") -> None:
        self.router.include_router(router, prefix)

    def url_path_for(self, name: str, /, **params: Any) -> str:
        return self.router.url_path_for(name, **params)

    @property
    def routes(self) -> list[Route]:
        return self.router.routes

    @property
    def db(self) -> Any:
        """The ``default`` database pool (configure ``database.default``)."""
        try:
            return self.databases["default"]
        except KeyError:
            raise RuntimeError("no database pool named 'default' is configured") from None

    # -- errors ------------------------------------------------------------------------

    def exception_handler(self, key: int | type[BaseException]) -> Callable[[F], F]:
        """Register ``handler(request, exc)`` for a status code or an exception class."""

        def decorator(handler: F) -> F:
            self.add_exception_handler(key, handler)
            return handler

        return decorator

    def add_exception_handler(
        self, key: int | type[BaseException], handler: ExceptionHandler
    ) -> None:
        if isinstance(key, int):
            self._handlers_by_status[key] = handler
        else:
            self._handlers_by_class[key] = handler

    def _handler_for(self, exc: Exception) -> ExceptionHandler | None:
        """Starlette's rules: an ``HTTPException`` goes to a handler for its status or
        for an ``HTTPException`` class; anything else to a handler for its class, else
        to the 500 handler."""
        by_class = self._handlers_by_class
        if isinstance(exc, HTTPException):
            handler = self._handlers_by_status.get(exc.status_code)
            if handler is not None:
                return handler
            for cls in type(exc).__mro__:
                if cls in by_class and issubclass(cls, HTTPException):
                    return by_class[cls]
            return None
        for cls in type(exc).__mro__:
            if cls in by_class:
                return by_class[cls]
        return self._handlers_by_status.get(500)

    async def _handle_error(self, request: Request, exc: Exception) -> Response:
        handler = self._handler_for(exc)
        if handler is not None:
            try:
                return to_response(await _call(handler, request, exc))
            except Exception:
                error_log.exception(
                    "Exception in the exception handler for %s", request.request_line
                )
                return _internal_error()
        if isinstance(exc, HTTPException):
            return JSONResponse({"detail": exc.detail}, exc.status_code, exc.headers)
        if isinstance(exc, ClientDisconnect):
            error_log.debug("client went away during %s", request.request_line)
            return PlainTextResponse("Client Closed Request\n", 499)
        error_log.error("Exception in handler for %s", request.request_line, exc_info=exc)
        return _internal_error()

    # -- lifespan ----------------------------------------------------------------------

    def on_startup(self, func: F) -> F:
        """Run ``func`` (sync or async) when a worker starts, before it serves."""
        self._startup.append(func)
        return func

    def on_shutdown(self, func: F) -> F:
        """Run ``func`` when a worker stops, after in-flight requests are done."""
        self._shutdown.append(func)
        return func

    async def startup(self) -> None:
        for func in self._startup:
            await _call(func)
        if self._lifespan is not None:
            stack = contextlib.AsyncExitStack()
            state = await stack.enter_async_context(self._lifespan(self))
            self._lifespan_stack = stack
            if state:
                self.state.__dict__.update(state)

    async def shutdown(self) -> None:
        stack, self._lifespan_stack = self._lifespan_stack, None
        if stack is not None:
            await stack.aclose()
        for func in self._shutdown:
            await _call(func)

    # -- middleware ---------------------------------------------------------------------

    def add_middleware(self, cls: type[Any], **options: Any) -> None:
        """Wrap the app in middleware ``cls`` (a ``covetd.middleware.Middleware``).

        The middleware added last is the outermost, as in Starlette; middleware from
        the config file's ``middleware:`` list wraps all of these.
        """
        from ..middleware.options import parse_options

        parsed = parse_options(cls.Options, options, getattr(cls, "name", "") or cls.__name__)
        self._middleware.append((cls, parsed))
        handler: Callable[[Request], Coroutine[Any, Any, Response]] = self._dispatch
        for middleware_cls, middleware_options in self._middleware:
            handler = middleware_cls(handler, middleware_options)
        self.handle = handler

    # -- WebSockets (``Dispatcher`` hands them here) ---------------------------------------

    async def _dispatch_websocket(self, request: Request) -> Response:
        """Run a WebSocket handler; its end is a ``WebSocketEnded`` marker response.

        Refusals before ``accept`` are plain HTTP responses: no route (404), a handler
        that returns a Response or raises HTTPException (that answer), a handler that
        returns without accepting (403).
        """
        channel = request.websocket_channel
        assert channel is not None
        try:
            route, params = self.router.resolve(WEBSOCKET, request.path)
        except HTTPException as exc:
            status = 404 if exc.status_code == 404 else 403
            return PlainTextResponse(f"{'Not Found' if status == 404 else 'Forbidden'}\n", status)
        request.route = route
        request.path_params = params
        if route.passed_params is not None:
            params = {name: params[name] for name in route.passed_params}
        ws = WebSocket(request, channel)
        try:
            result = await _call_handler(route, ws, params)
        except WebSocketDisconnect:
            result = None
        except HTTPException as exc:
            if ws.state is WebSocketState.CONNECTING:
                return JSONResponse({"detail": exc.detail}, exc.status_code, exc.headers)
            result = None
        except Exception:
            error_log.exception("Exception in WebSocket handler for %s", request.request_line)
            if ws.state is WebSocketState.CONNECTING:
                return _internal_error()
            await ws.close(1011, "internal error")
            result = None
        finally:
            for room in list(ws.rooms):
                await ws.leave(room)
        if ws.state is WebSocketState.CONNECTING:
            return result if isinstance(result, Response) else PlainTextResponse("Forbidden\n", 403)
        if ws.state is WebSocketState.CONNECTED:
            await ws.close(1000)
        return WebSocketEnded()

    # -- ASGI ----------------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        from .asgi import serve_asgi  # the ASGI face is optional; keep it out of import time

        await serve_asgi(self, scope, receive, send)


async def _call_handler(route: Route, subject: Any, params: dict[str, Any]) -> Any:
    """Call a route's endpoint in its call style (``subject``: request or WebSocket)."""
    endpoint = route.endpoint
    style = route.call_style
    if style == CALL_REQUEST:
        return await endpoint(subject)
    if style == CALL_NOTHING:
        return await endpoint()
    if style == CALL_PARAMS:
        return await endpoint(**params)
    return await endpoint(subject, **params)


async def _call(func: Callable[..., Any], *args: Any) -> Any:
    result = func(*args)
    if inspect.isawaitable(result):
        result = await result
    return result


def _internal_error() -> Response:
    return PlainTextResponse("Internal Server Error\n", 500)
