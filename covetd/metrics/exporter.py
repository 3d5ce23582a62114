"""The master's small HTTP endpoint on ``metrics.bind``: ``/metrics``, ``/healthz``,
``/readyz``.

It runs inside the master's select loop (no thread, no event loop), on its own port,
so it answers even when every worker is saturated. Requests are tiny and bounded: a
head of at most 8 KiB within 5 s, one request per connection, at most 32 connections.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Exporter", "Reply"]

error_log = logging.getLogger("covetd.error")

MAX_HEAD = 8192
READ_TIMEOUT = 5.0
MAX_CLIENTS = 32


@dataclass
class Reply:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"


@dataclass
class _Client:
    sock: socket.socket
    deadline: float
    buffer: bytes = b""
    out: bytes = field(default=b"")


Route = Callable[[str], Reply]  # the Accept header -> reply

_REASONS = {
    200: "OK",
    404: "Not Found",
    405: "Method Not Allowed",
    503: "Service Unavailable",
    400: "Bad Request",
}


class Exporter:
    """Serve ``routes`` (path → function of the Accept header) on ``sock``."""

    def __init__(
        self, sock: socket.socket, routes: dict[str, Route], selector: selectors.BaseSelector
    ) -> None:
        self.sock = sock
        self.routes = routes
        self.selector = selector
        self.clients: dict[socket.socket, _Client] = {}
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ, self._accept)

    def handle(self, key: selectors.SelectorKey) -> None:
        callback = key.data
        callback(key.fileobj)

    def _accept(self, sock: socket.socket) -> None:
        while len(self.clients) < MAX_CLIENTS:
            try:
                client, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EMFILE and friends: try again on the next event
                error_log.warning("metrics endpoint cannot accept: %s", exc)
                return
            client.setblocking(False)
            self.clients[client] = _Client(client, time.monotonic() + READ_TIMEOUT)
            self.selector.register(client, selectors.EVENT_READ, self._read)

    def _read(self, sock: socket.socket) -> None:
        client = self.clients.get(sock)
        if client is None:
            return
        try:
            data = sock.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(client)
            return
        client.buffer += data
        if b"\r\n\r\n" in client.buffer:
            self._respond(client, self._answer(client.buffer))
        elif len(client.buffer) > MAX_HEAD:
            self._respond(client, Reply(400, b"Bad Request\n"))

    def _answer(self, head: bytes) -> Reply:
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ")
        if len(parts) != 3:
            return Reply(400, b"Bad Request\n")
        method, target = parts[0], parts[1].split(b"?", 1)[0].decode("latin-1")
        accept = ""
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"accept":
                accept = value.strip().decode("latin-1")
        route = self.routes.get(target)
        if route is None:
            return Reply(404, b"Not Found\n")
        if method not in (b"GET", b"HEAD"):
            return Reply(405, b"Method Not Allowed\n")
        try:
            reply = route(accept)
        except Exception:
            error_log.exception("metrics endpoint failed on %s", target)
            return Reply(500, b"Internal Server Error\n")
        if method == b"HEAD":
            reply = Reply(reply.status, b"", reply.content_type)
        return reply

    def _respond(self, client: _Client, reply: Reply) -> None:
        head = (
            f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Error')}\r\n"
            f"content-type: {reply.content_type}\r\ncontent-length: {len(reply.body)}\r\n"
            "connection: close\r\n\r\n"
        ).encode("latin-1")
        client.out = head + reply.body
        self.selector.modify(client.sock, selectors.EVENT_WRITE, self._write)
        self._write(client.sock)

    def _write(self, sock: socket.socket) -> None:
        client = self.clients.get(sock)
        if client is None:
            return
        try:
            sent = sock.send(client.out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(client)
            return
        client.out = client.out[sent:]
        if not client.out:
            self._drop(client)

    def _drop(self, client: _Client) -> None:
        self.clients.pop(client.sock, None)
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(client.sock)
        client.sock.close()

    def expire(self, now: float) -> None:
        """Close connections that took too long (called from the master's loop)."""
        for client in list(self.clients.values()):
            if now > client.deadline:
                self._drop(client)

    def close(self) -> None:
        for client in list(self.clients.values()):
            self._drop(client)
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(self.sock)
        self.sock.close()
