"""Responses a handler returns. The engine writes them; they never touch a socket.

A plain ``Response`` carries its whole body; ``StreamingResponse`` carries an
iterator and is sent chunked (or close-delimited to HTTP/1.0 clients). Every header
goes through ``encode_header``, so a value with CR or LF raises ``ValueError`` in the
handler instead of splitting the response on the wire.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping
from http.cookies import CookieError, SimpleCookie
from typing import Any, ClassVar, Literal
from urllib.parse import quote

from .datastructures import MutableHeaders, encode_header
from .json_encoding import json_encode

__all__ = [
    "HTMLResponse",
    "JSONResponse",
    "PlainTextResponse",
    "RedirectResponse",
    "Response",
    "StreamingResponse",
]

_NO_BODY_STATUSES = frozenset({204, 304})


@functools.lru_cache(maxsize=256)
def content_type_header(media_type: str, charset: str) -> tuple[bytes, bytes]:
    if media_type.startswith("text/") and "charset=" not in media_type.lower():
        media_type = f"{media_type}; charset={charset}"
    return encode_header("content-type", media_type)


def allows_body(status_code: int) -> bool:
    """RFC 9110 §6.4.1: 1xx, 204 and 304 responses never carry content."""
    return status_code >= 200 and status_code not in _NO_BODY_STATUSES


class Response:
    """A complete response: status, headers and the whole body as bytes."""

    __slots__ = ("body", "raw_headers", "status_code")

    media_type: ClassVar[str | None] = None
    charset: ClassVar[str] = "utf-8"
    streaming: ClassVar[bool] = False
    # The class's own content-type header, encoded once (None: no media type).
    _content_type: ClassVar[tuple[bytes, bytes] | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.media_type is not None:
            cls._content_type = content_type_header(cls.media_type, cls.charset)

    def __init__(
        self,
        content: Any = None,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
    ) -> None:
        self.status_code = status_code
        if status_code >= 200 and status_code != 204 and status_code != 304:
            body = self.body = self.render(content)
            if headers is None and media_type is None and self._content_type and not self.streaming:
                # The common case, spelled out: no header to validate or merge.
                self.raw_headers = [self._content_type, (b"content-length", b"%d" % len(body))]
                return
        else:
            self.body = b""
        self.raw_headers = self._build_headers(headers, media_type)

    def render(self, content: Any) -> bytes:
        if content is None:
            return b""
        if isinstance(content, bytes):
            return content
        if isinstance(content, str):
            return content.encode(self.charset)
        if isinstance(content, bytearray | memoryview):
            return bytes(content)
        raise TypeError(
            f"{type(self).__name__} cannot send content of type {type(content).__name__}"
        )

    def _build_headers(
        self, headers: Mapping[str, str] | None, media_type: str | None
    ) -> list[tuple[bytes, bytes]]:
        raw = [encode_header(k, v) for k, v in headers.items()] if headers else []
        names = {name for name, _ in raw} if raw else ()
        media_type = media_type or self.media_type
        if media_type is not None and b"content-type" not in names:
            raw.append(content_type_header(media_type, self.charset))
        if not self.streaming and b"content-length" not in names and allows_body(self.status_code):
            raw.append((b"content-length", b"%d" % len(self.body)))
        return raw

    @property
    def headers(self) -> MutableHeaders:
        return MutableHeaders(self.raw_headers)

    def set_cookie(
        self,
        key: str,
        value: str = "",
        *,
        max_age: int | None = None,
        expires: str | int | None = None,
        path: str | None = "/",
        domain: str | None = None,
        secure: bool = False,
        httponly: bool = False,
        samesite: Literal["lax", "strict", "none"] | None = "lax",
        partitioned: bool = False,
    ) -> None:
        """Add a ``Set-Cookie`` header (attribute values are validated like any header)."""
        cookie: SimpleCookie = SimpleCookie()
        try:
            cookie[key] = value
        except CookieError as exc:
            raise ValueError(f"invalid cookie name {key!r}") from exc
        morsel = cookie[key]
        if max_age is not None:
            morsel["max-age"] = max_age
        if expires is not None:
            morsel["expires"] = expires
        if path is not None:
            morsel["path"] = path
        if domain is not None:
            morsel["domain"] = domain
        if secure:
            morsel["secure"] = True
        if httponly:
            morsel["httponly"] = True
        if samesite is not None:
            if samesite.lower() not in ("lax", "strict", "none"):
                raise ValueError("samesite must be 'lax', 'strict' or 'none'")
            morsel["samesite"] = samesite.capitalize()
        header = morsel.OutputString()
        if partitioned:
            header += "; Partitioned"
        self.raw_headers.append(encode_header("set-cookie", header))

    def delete_cookie(self, key: str, *, path: str = "/", domain: str | None = None) -> None:
        self.set_cookie(key, max_age=0, expires=0, path=path, domain=domain)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.status_code}>"


class PlainTextResponse(Response):
    __slots__ = ()
    media_type = "text/plain"


class HTMLResponse(Response):
    __slots__ = ()
    media_type = "text/html"


class JSONResponse(Response):
    """``content`` serialised as compact UTF-8 JSON (NaN and Infinity refused)."""

    __slots__ = ()
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json_encode(content)


class RedirectResponse(Response):
    """Redirect to ``url`` (307 by default); the URL is percent-quoted, never raw."""

    __slots__ = ()

    def __init__(
        self, url: str, status_code: int = 307, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(None, status_code, headers)
        location = quote(str(url), safe=":/%#?=@[]!$&'()*+,;")
        self.headers["location"] = location


class StreamingResponse(Response):
    """Sends whatever ``content`` yields, as it comes (chunked when the length is unknown).

    ``content`` is an async iterable of ``bytes``/``str``, or a sync iterable, which is
    advanced in a worker thread so a blocking generator cannot stall the event loop.
    """

    __slots__ = ("body_iterator",)
    streaming = True

    def __init__(
        self,
        content: AsyncIterable[bytes | str] | Iterable[bytes | str],
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
    ) -> None:
        super().__init__(None, status_code, headers, media_type)
        if isinstance(content, AsyncIterable):
            self.body_iterator: AsyncIterator[bytes | str] = aiter(content)
        else:
            self.body_iterator = _iterate_in_thread(iter(content))


async def _iterate_in_thread(iterator: Iterator[bytes | str]) -> AsyncIterator[bytes | str]:
    loop = asyncio.get_running_loop()
    done = object()
    while True:
        chunk = await loop.run_in_executor(None, next, iterator, done)
        if chunk is done:
            return
        yield chunk  # type: ignore[misc]
