"""What a request's line and header block say: the facts HTTP/1.1 parsing produces.

The engine's parser builds one per request; the framework's ``Request`` is a
``RequestHead`` with conveniences on top, so the parser builds the ``Request``
directly and no fields are copied from one object to another on the hot path.

The engine reads these fields on every request, so the native build
(``setup.py``) compiles this class: compiled engine code then reads and writes them
as C struct fields instead of looking them up by name. ``Request`` (interpreted,
with an instance ``__dict__`` for everything else) subclasses it either way.
"""

from __future__ import annotations

from urllib.parse import unquote

from ..mypyc_attr import mypyc_attr

__all__ = ["RequestHead"]


@mypyc_attr(allow_interpreted_subclasses=True)
class RequestHead:
    """A validated request head.

    ``raw_headers`` keeps the order received, names lowercased, values as sent. The
    framing facts default to "absent"; the parser sets them only when the request
    has them.
    """

    content_length: int | None = None
    chunked: bool = False
    has_body: bool = False
    expect_continue: bool = False
    upgrade: bytes | None = None
    #: Set by the engine when it takes the upgrade: the parser then hands back the
    #: bytes after the head instead of reading a body.
    switching: bool = False

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
        # Percent-decoded; each byte above 0x7F is one character (latin-1).
        path = raw_path.decode("latin-1")
        self.path = path if raw_path.find(b"%") < 0 else unquote(path)
        self.query_string = query_string
        self.http_version = http_version
        self.raw_headers = raw_headers if raw_headers is not None else []
        self.keep_alive = keep_alive

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.method} {self.raw_path!r} HTTP/{self.http_version}>"
