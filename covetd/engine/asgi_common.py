"""What both ASGI bridges (HTTP in ``asgi.py``, WebSocket in ``asgi_websocket.py``)
share: the message types, the version, the error for a gone client, and the check
every header an app sends goes through (names must be tokens, values must not hold
CR, LF or NUL, so an app cannot split a response however it builds its headers).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

from ..mypyc_attr import mypyc_attr

if TYPE_CHECKING:
    from ..app.requests import Request

__all__ = [
    "ASGI_VERSION",
    "DISCONNECT",
    "AsgiApp",
    "ClientDisconnected",
    "Message",
    "Receive",
    "Send",
    "add_middleware_results",
    "http_scope",
    "response_headers",
    "response_start",
]

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[dict[str, Any], Receive, Send], Awaitable[None]]

#: What ``receive`` returns once the client is gone (or the request is over).
DISCONNECT: Final[Message] = {"type": "http.disconnect"}
ASGI_VERSION: Final = {"version": "3.0", "spec_version": "2.4"}
_TOKEN: Final = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FORBIDDEN_IN_VALUE: Final = re.compile(rb"[\r\n\x00]")
_checked_names: Final[dict[bytes, bytes]] = {}
_MAX_CHECKED_NAMES: Final = 4096


def _checked_name(name: bytes) -> bytes:
    """The lowercased name, after checking it is a token (cached: names repeat)."""
    if not isinstance(name, bytes) or not _TOKEN.fullmatch(name):
        raise RuntimeError(f"invalid header name {name!r}")
    lowered = name.lower()
    if len(_checked_names) < _MAX_CHECKED_NAMES:
        _checked_names[name] = lowered
    return lowered


def response_headers(raw: Any) -> tuple[list[tuple[bytes, bytes]], bool]:
    """Validated headers (hop-by-hop framing ones dropped) and whether a length is set."""
    headers = []
    has_length = False
    checked = _checked_names
    forbidden = _FORBIDDEN_IN_VALUE.search
    for name, value in raw:
        lowered = checked.get(name) or _checked_name(name)
        if type(value) is not bytes:
            value = bytes(value)
        if forbidden(value):
            raise RuntimeError(f"invalid character (CR, LF or NUL) in header {lowered!r}")
        if lowered == b"content-length":
            has_length = True
        elif lowered == b"transfer-encoding":
            continue  # framing is the server's business
        headers.append((lowered, value))
    return headers, has_length


def http_scope(request: Request, state: dict[str, Any]) -> dict[str, Any]:
    """The ASGI ``http`` scope of ``request``; ``state`` is the lifespan state, of which
    each request gets a shallow copy."""
    return {
        "type": "http",
        "asgi": ASGI_VERSION,
        "http_version": request.http_version,
        "server": request.server,
        "client": request.client,
        "scheme": request.scheme,
        "method": request.method,
        "root_path": request.root_path,
        "path": request.path,
        "raw_path": request.raw_path,
        "query_string": request.query_string,
        "headers": request.raw_headers,
        "state": state.copy(),
    }


def response_start(message: Message) -> tuple[int, list[tuple[bytes, bytes]], bool]:
    """An ``http.response.start`` message's status and validated headers, and whether
    the app set the length itself."""
    status = message["status"]
    if type(status) is not int or not 100 <= status <= 599:
        raise RuntimeError(f"invalid status {status!r}")
    headers, has_length = response_headers(message.get("headers", ()))
    return status, headers, has_length


@mypyc_attr(native_class=False)  # compiled, a subclass of a builtin must stay a Python class
class ClientDisconnected(OSError):
    """``send`` after the client went away (ASGI 2.4: a server-specific ``OSError``)."""


def add_middleware_results(scope: dict[str, Any], request: Request) -> None:
    """Put what covetd's middleware found about ``request`` where ASGI apps look for
    it (Starlette's keys), so an ASGI app behind ``sessions`` and ``auth`` sees them:

    - ``scope["session"]``: the session dict itself (what the app writes is what the
      ``sessions`` middleware saves once the response starts);
    - ``scope["user"]`` and ``scope["auth"]``: the ``auth`` middleware's ``User``
      (``is_authenticated``, ``display_name``; its ``scopes`` are what Starlette's
      ``requires`` checks).

    Each is absent when its middleware is not installed, as in Starlette."""
    found = request.__dict__
    session = found.get("_session")
    if session is not None:
        scope["session"] = session
    user = found.get("_user")
    if user is not None:
        scope["user"] = scope["auth"] = user
