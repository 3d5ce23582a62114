"""The request a handler receives: lazily parsed, read-only, one per HTTP request.

Everything a handler may not need (headers mapping, query parameters, cookies, URL,
body) is built on first use, so a handler that only looks at the path pays for the
path only.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qsl, unquote

from .datastructures import (
    MAX_QUERY_FIELDS,
    URL,
    Address,
    FormData,
    Headers,
    QueryParams,
    State,
)
from .exceptions import HTTPException
from .head import RequestHead

if TYPE_CHECKING:
    from .routing import Route
    from .users import User
    from .websockets import WebSocketChannel

__all__ = ["BodyChannel", "Request"]


class BodyChannel(Protocol):
    """Where a request's body comes from: the engine's connection, or ASGI ``receive``."""

    async def read_chunk(self) -> bytes:
        """The next piece of the body; ``b""`` once it is complete.

        Raises ``ClientDisconnect`` when the client left before the end.
        """
        ...

    def is_disconnected(self) -> bool: ...


class _NoBody:
    """The channel of a request built without one (tests, internal requests)."""

    async def read_chunk(self) -> bytes:
        return b""

    def is_disconnected(self) -> bool:
        return False


NO_BODY: BodyChannel = _NoBody()


class Request(RequestHead):
    """An HTTP request as a handler sees it.

    Per-request state that is often unused (parsed headers, query, cookies, body...)
    starts as a class-level default and is stored on the instance on first use; so do
    the connection facts the engine fills in (scheme, client, server).
    """

    scheme = "http"
    client: Address | None = None
    server: Address | None = None
    root_path = ""
    path_params: dict[str, Any] = {}  # replaced (never mutated) by the router
    app: Any = None
    route: Route | None = None
    _channel: BodyChannel = NO_BODY
    #: Set by the engine on a WebSocket upgrade request it is ready to switch.
    websocket_channel: WebSocketChannel | None = None
    _headers: Headers | None = None
    _query: QueryParams | None = None
    _cookies: dict[str, str] | None = None
    _state: State | None = None
    _body: bytes | None = None
    _json: Any = None
    _json_loaded = False
    _form: FormData | None = None
    _stream_consumed = False

    @classmethod
    def build(
        cls,
        method: str,
        raw_path: bytes,
        query_string: bytes = b"",
        http_version: str = "1.1",
        raw_headers: list[tuple[bytes, bytes]] | None = None,
        *,
        scheme: str | None = None,
        client: Address | None = None,
        server: Address | None = None,
        root_path: str | None = None,
        channel: BodyChannel | None = None,
    ) -> Request:
        """A Request with its connection facts (for ASGI adapters and tests)."""
        request = cls(method, raw_path, query_string, http_version, raw_headers)
        if scheme is not None:
            request.scheme = scheme
        if client is not None:
            request.client = client
        if server is not None:
            request.server = server
        if root_path is not None:
            request.root_path = root_path
        if channel is not None:
            request._channel = channel
        return request

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.path!r}>"

    # -- head --------------------------------------------------------------------

    @property
    def headers(self) -> Headers:
        if self._headers is None:
            self._headers = Headers(self.raw_headers)
        return self._headers

    @property
    def query_params(self) -> QueryParams:
        if self._query is None:
            try:
                self._query = QueryParams.parse(self.query_string)
            except ValueError:
                raise HTTPException(400, "too many query parameters") from None
        return self._query

    @property
    def cookies(self) -> dict[str, str]:
        if self._cookies is None:
            self._cookies = parse_cookie_header(self.headers.getlist("cookie"))
        return self._cookies

    @property
    def url(self) -> URL:
        host = self.headers.get("host")
        if host is None and self.server is not None:
            host = f"{self.server.host}:{self.server.port}"
        return URL(
            self.scheme, host or "", self.root_path + self.path, self.query_string.decode("latin-1")
        )

    @property
    def state(self) -> State:
        """Per-request attributes for middleware and handlers."""
        if self._state is None:
            self._state = State()
        return self._state

    @property
    def request_line(self) -> str:
        """``"GET /path?query HTTP/1.1"`` as received, quoted, for logs."""
        target = self.raw_path.decode("latin-1")
        if self.query_string:
            target += "?" + self.query_string.decode("latin-1")
        return f'"{self.method} {target} HTTP/{self.http_version}"'

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()

    # -- body --------------------------------------------------------------------

    async def stream(self) -> AsyncIterator[bytes]:
        """The body as it arrives, piece by piece (once; or the cached body)."""
        if self._body is not None:
            if self._body:
                yield self._body
            return
        if self._stream_consumed:
            raise RuntimeError("the request body stream was already consumed")
        self._stream_consumed = True
        read = self._channel.read_chunk
        while chunk := await read():
            yield chunk

    async def body(self) -> bytes:
        if self._body is None:
            self._body = b"".join([chunk async for chunk in self.stream()])
        return self._body

    async def json(self) -> Any:
        if not self._json_loaded:
            try:
                self._json = json.loads(await self.body())
            except ValueError:
                raise HTTPException(400, "request body is not valid JSON") from None
            self._json_loaded = True
        return self._json

    async def form(self) -> FormData:
        """The urlencoded form in the body (``application/x-www-form-urlencoded``)."""
        if self._form is None:
            if self.content_type not in ("application/x-www-form-urlencoded", ""):
                raise HTTPException(415, f"unsupported form content type {self.content_type!r}")
            text = (await self.body()).decode("latin-1")
            try:
                fields = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_QUERY_FIELDS)
            except ValueError:
                raise HTTPException(400, "too many form fields") from None
            self._form = FormData(fields)
        return self._form

    async def is_disconnected(self) -> bool:
        """True once the client has closed the connection."""
        return self._channel.is_disconnected()

    # -- set by middleware ---------------------------------------------------------

    @property
    def session(self) -> dict[str, Any]:
        """The session, a dict (``sessions`` middleware); writing it sends a cookie.

        Raises ``RuntimeError`` when the ``sessions`` middleware is not installed (or
        runs after the code asking), rather than handing out a dict nobody saves.
        """
        session: dict[str, Any] | None = self.__dict__.get("_session")
        if session is None:
            raise RuntimeError(
                "SessionMiddleware is not installed: add '- sessions: {...}' to the "
                "middleware list, before the middleware that uses request.session"
            )
        return session

    @session.setter
    def session(self, value: dict[str, Any]) -> None:
        self.__dict__["_session"] = value

    @property
    def user(self) -> User:
        """Who made the request (``auth`` middleware); the anonymous user otherwise."""
        user: User | None = self.__dict__.get("_user")
        if user is None:
            from .users import ANONYMOUS

            return ANONYMOUS
        return user

    @user.setter
    def user(self, value: User) -> None:
        self.__dict__["_user"] = value


def parse_cookie_header(values: list[str]) -> dict[str, str]:
    """``Cookie`` header(s) → name → value (RFC 6265 §5.4, lenient like browsers)."""
    cookies: dict[str, str] = {}
    for header in values:
        for pair in header.split(";"):
            name, sep, value = pair.partition("=")
            name = name.strip()
            if not sep or not name:
                continue
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            cookies.setdefault(name, unquote(value))
    return cookies
