"""The app's own answer to a request: route it, call its handler, and turn what the
handler returned into a Response.

This is the app layer's share of every request on the native path, so it lives apart
from ``application.py``: no class here is meant to be subclassed and everything is
fully typed, which lets the native build (``setup.py``) compile it.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from .json_encoding import json_encode
from .requests import Request
from .responses import (
    JSONResponse,
    PlainTextResponse,
    Response,
    content_type_header,
)
from .routing import CALL_NOTHING, CALL_PARAMS, CALL_REQUEST, Route

if TYPE_CHECKING:
    from .application import Covet

__all__ = ["Dispatcher", "to_response"]

# Final: the native build reads these as C globals, not from the module's dict.
_OCTET_STREAM: Final = "application/octet-stream"
_TEXT_TYPE: Final = content_type_header("text/plain", "utf-8")
_JSON_TYPE: Final = content_type_header("application/json", "utf-8")
_PLAIN_TEXT_RESPONSE: Final = PlainTextResponse
_JSON_RESPONSE: Final = JSONResponse
# The content-length field of every small body, made once: formatting it costs more
# than building the rest of the response.
_SMALL_LENGTHS: Final = [(b"content-length", b"%d" % n) for n in range(1024)]
_new_response: Final = object.__new__


class Dispatcher:
    """``dispatch`` is ``Covet.handle`` before any middleware wraps it."""

    def __init__(self, app: Covet) -> None:
        self.app = app
        self.router = app.router  # held: compiled, a field read instead of a lookup by name

    async def dispatch(self, request: Request) -> Response:
        app = self.app
        request.app = app
        if request.websocket_channel is not None:
            return await app._dispatch_websocket(request)
        try:
            route, params = self.router.resolve(request.method, request.path)
            request.route = route
            request.path_params = params
            if route.passed_params is not None:
                params = {name: params[name] for name in route.passed_params}
            endpoint = route.endpoint
            if route.is_async:
                style = route.call_style
                if style == CALL_REQUEST:
                    result = await endpoint(request)
                elif style == CALL_NOTHING:
                    result = await endpoint()
                elif style == CALL_PARAMS:
                    result = await endpoint(**params)
                else:
                    result = await endpoint(request, **params)
            else:
                result = await _run_sync(route, request, params)
            return to_response(result)
        except Exception as exc:
            return await app._handle_error(request, exc)


def to_response(result: Any) -> Response:
    """Turn what a handler returned into a Response (dict/list → JSON, str → text)."""
    kind = type(result)
    if kind is str:
        return _text_response(result)
    if kind is dict or kind is list:
        return _json_response(result)
    if isinstance(result, Response):
        return result
    if kind is bytes:
        return Response(result, media_type=_OCTET_STREAM)
    if result is None:
        return Response(status_code=204)
    if isinstance(result, dict | list | tuple):
        return JSONResponse(result)
    raise TypeError(
        f"a handler returned {kind.__name__}; return a Response, dict, list, str or bytes"
    )


def _text_response(text: str) -> Response:
    """``PlainTextResponse(text)``, without the general constructor."""
    response: Response = _new_response(_PLAIN_TEXT_RESPONSE)
    body = response.body = text.encode("utf-8")
    response.status_code = 200
    response.raw_headers = [_TEXT_TYPE, _content_length(len(body))]
    return response


def _json_response(content: Any) -> Response:
    """``JSONResponse(content)``, without the general constructor."""
    response: Response = _new_response(_JSON_RESPONSE)
    body = response.body = json_encode(content)
    response.status_code = 200
    response.raw_headers = [_JSON_TYPE, _content_length(len(body))]
    return response


def _content_length(length: int) -> tuple[bytes, bytes]:
    if length < 1024:
        return _SMALL_LENGTHS[length]
    return (b"content-length", b"%d" % length)


async def _run_sync(route: Route, request: Request, params: dict[str, Any]) -> Any:
    """Plain ``def`` handlers run in the default thread pool, never on the event loop."""
    style = route.call_style
    endpoint = route.endpoint
    call: Callable[[], Any]
    if style == CALL_REQUEST:
        call = functools.partial(endpoint, request)
    elif style == CALL_NOTHING:
        call = endpoint
    elif style == CALL_PARAMS:
        call = functools.partial(endpoint, **params)
    else:
        call = functools.partial(endpoint, request, **params)
    return await asyncio.to_thread(call)
