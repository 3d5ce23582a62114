"""Build framework ``Request`` objects directly, with a canned body channel.

For unit tests of the Covet framework: no engine, no socket. ``FakeBody`` plays the
part of the engine's connection (or ASGI ``receive``): it hands out the chunks it was
given, then ``b""``; or raises ``ClientDisconnect`` where the client "left".
"""

from __future__ import annotations

from collections.abc import Iterable

from covetd import ClientDisconnect, Request
from covetd.app.datastructures import Address


class FakeBody:
    """A ``BodyChannel`` over canned chunks; counts how often it was read."""

    def __init__(self, *chunks: bytes, disconnect: bool = False) -> None:
        self.chunks = list(chunks)
        self.disconnect = disconnect
        self.reads = 0
        self.disconnected = False

    async def read_chunk(self) -> bytes:
        self.reads += 1
        if self.chunks:
            return self.chunks.pop(0)
        if self.disconnect:
            self.disconnected = True
            raise ClientDisconnect()
        return b""

    def is_disconnected(self) -> bool:
        return self.disconnected


def make_request(
    method: str = "GET",
    target: str | bytes = "/",
    headers: Iterable[tuple[str, str]] = (),
    body: Iterable[bytes] = (),
    *,
    channel: FakeBody | None = None,
    client: tuple[str, int] | None = ("127.0.0.1", 50000),
    server: tuple[str, int] | None = ("127.0.0.1", 8000),
    scheme: str = "http",
) -> Request:
    """A Request for ``method target`` (the target may carry ``?query``)."""
    raw_target = target.encode("latin-1") if isinstance(target, str) else target
    raw_path, _, query = raw_target.partition(b"?")
    return Request.build(
        method,
        raw_path,
        query,
        "1.1",
        [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers],
        scheme=scheme,
        client=Address(*client) if client else None,
        server=Address(*server) if server else None,
        channel=channel if channel is not None else FakeBody(*body),
    )
