"""Sans-IO HTTP/1.1 response serialisation: status lines, heads, chunk framing.

Invariants: every head written here ends with one blank line; header values reaching
``serialize_head`` were validated for CR/LF/NUL where they were set (the Response
classes), so no caller-controlled byte can start a new header or a new message.
"""

from __future__ import annotations

from email.utils import formatdate
from http import HTTPStatus
from typing import Final

__all__ = [
    "CONTINUE",
    "LAST_CHUNK",
    "Preamble",
    "encode_chunk",
    "error_response",
    "serialize_head",
    "status_line",
]

CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"
LAST_CHUNK: Final = b"0\r\n\r\n"
_CLOSE: Final = b"connection: close\r\n"
_KEEP_ALIVE: Final = b"connection: keep-alive\r\n"
_CHUNKED: Final = b"transfer-encoding: chunked\r\n"

STATUS_LINES: Final[dict[int, bytes]] = {
    s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n".encode("ascii") for s in HTTPStatus
}


def status_line(status: int) -> bytes:
    line = STATUS_LINES.get(status)
    if line is None:  # a code without a registered phrase: valid, sent without one
        if not 100 <= status <= 999:
            raise ValueError(f"invalid HTTP status code {status!r}")
        line = b"HTTP/1.1 %d \r\n" % status
        STATUS_LINES[status] = line
    return line


class Preamble:
    """The ``server`` and ``date`` header lines every response starts with.

    Formatting the date costs more than the rest of a small response's head, so it is
    rebuilt at most once a second (RFC 9110 §6.6.1 allows that resolution).
    """

    __slots__ = ("_server", "_stamp", "value")

    def __init__(self, server_header: str | None) -> None:
        self._server = (
            b"server: " + server_header.encode("latin-1") + b"\r\n" if server_header else b""
        )
        self._stamp = -1
        self.value = b""
        self.refresh(0.0)

    def refresh(self, now: float) -> None:
        """Rebuild ``value`` for wall-clock time ``now`` (0 = the current time)."""
        second = int(now)
        if second == self._stamp and second:
            return
        self._stamp = second
        date = formatdate(now or None, usegmt=True).encode("ascii")
        self.value = self._server + b"date: " + date + b"\r\n"


# The end of a head, by (keep_alive, chunked, http10).
HEAD_TAILS: Final = {
    (keep_alive, chunked, http10): (
        (_CHUNKED if chunked else b"")
        + (_CLOSE if not keep_alive else _KEEP_ALIVE if http10 else b"")
        + b"\r\n"
    )
    for keep_alive in (False, True)
    for chunked in (False, True)
    for http10 in (False, True)
}


def serialize_head(
    status: int,
    headers: list[tuple[bytes, bytes]],
    preamble: bytes,
    keep_alive: bool,
    chunked: bool = False,
    http10: bool = False,
) -> bytes:
    """The status line and header block for one response, blank line included."""
    parts = [STATUS_LINES.get(status) or status_line(status), preamble]
    for header in headers:  # a loop, not a comprehension: no frame per call (3.11)
        parts.append(b"%s: %s\r\n" % header)
    parts.append(HEAD_TAILS[keep_alive, chunked, http10])
    return b"".join(parts)


def encode_chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


def error_response(status: int, preamble: bytes) -> bytes:
    """A complete ``text/plain`` error answer that closes the connection.

    The body is the status phrase only: details of why a request was refused go to the
    error log, not to whoever sent it.
    """
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    body = phrase.encode("ascii") + b"\n"
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", b"%d" % len(body)),
    ]
    return serialize_head(status, headers, preamble, False) + body
