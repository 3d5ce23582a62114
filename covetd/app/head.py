"""What a request's line and header block say: the facts HTTP/1.1 parsing produces.

The engine's parser builds one per request; the framework's ``Request`` is a
``RequestHead`` with conveniences on top, so the parser builds the ``Request``
directly and no fields are copied from one object to another on the hot path.
"""

from __future__ import annotations

__all__ = ["RequestHead"]


class RequestHead:
    """A validated request head.

    ``raw_headers`` keeps the order received, names lowercased, values as sent. The
    framing facts declared at class level default to "absent"; the parser sets them on
    the instance only when the request has them.
    """

    content_length: int | None = None
    chunked = False
    has_body = False
    expect_continue = False
    upgrade: bytes | None = None
    #: Set by the engine when it takes the upgrade: the parser then hands back the
    #: bytes after the head instead of reading a body.
    switching = False

    def __init__(
        self,
        method: str,
        raw_path: bytes,
        query_string: bytes = b"",
        http_version: str = "1.1",
        raw_headers: list[tuple[bytes, bytes]] | None = None,
        keep_alive: bool = True,
    ) -> None:
        self.method = method
        self.raw_path = raw_path
        self.query_string = query_string
        self.http_version = http_version
        self.raw_headers = raw_headers if raw_headers is not None else []
        self.keep_alive = keep_alive

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.method} {self.raw_path!r} HTTP/{self.http_version}>"
