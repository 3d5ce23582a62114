"""Clients for the WebSocket integration tests.

``WsprotoClient`` is wsproto (an implementation independent of covetd and of the
``websockets`` library) over a plain blocking socket: the test decides every step,
including *not* answering pings (wsproto never answers one on its own) and not reading
at all. ``upgrade_request`` builds handshakes byte by byte for the engine's refusals.
Every read has a deadline; nothing sleeps.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect
from wsproto import ConnectionState, ConnectionType, WSConnection
from wsproto import events as wp
from wsproto.extensions import Extension, PerMessageDeflate

KEY = base64.b64encode(b"covetd-ws-tests!").decode()  # 16 bytes: a valid key


def ws_url(server: Any, path: str) -> str:
    return f"ws://{server.host}:{server.port}{path}"


def ws_connect(server: Any, path: str, **kwargs: Any) -> ClientConnection:
    """The ``websockets`` client, with generous timeouts for a busy 2-core machine."""
    kwargs.setdefault("open_timeout", 10)
    kwargs.setdefault("close_timeout", 10)
    return connect(ws_url(server, path), **kwargs)


def refused(server: Any, path: str, **kwargs: Any) -> Any:
    """The HTTP response that refused a ``websockets`` handshake (fails if it opened)."""
    try:
        with ws_connect(server, path, **kwargs):
            pass
    except InvalidStatus as exc:
        return exc.response
    raise AssertionError(f"the handshake to {path} succeeded; a refusal was expected")


def closed_by_server(client: ClientConnection, timeout: float = 10.0) -> tuple[int, str]:
    """Read until the server's close frame; its (code, reason)."""
    deadline = time.monotonic() + timeout
    try:
        while True:
            client.recv(timeout=max(0.0, deadline - time.monotonic()))
    except ConnectionClosed as closed:
        assert closed.rcvd is not None, f"no close frame received: {closed!r}"
        return closed.rcvd.code, closed.rcvd.reason


def upgrade_request(
    path: str = "/echo",
    *,
    method: str = "GET",
    version: str | None = "13",
    key: str | None = KEY,
    http_version: str = "1.1",
    extra: Iterable[str] = (),
) -> bytes:
    """A WebSocket upgrade request; ``None`` leaves a header out."""
    lines = [f"{method} {path} HTTP/{http_version}", "Host: test", "Upgrade: websocket"]
    lines.append("Connection: Upgrade")
    if version is not None:
        lines.append(f"Sec-WebSocket-Version: {version}")
    if key is not None:
        lines.append(f"Sec-WebSocket-Key: {key}")
    lines.extend(extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@dataclass
class Closed:
    """How a wsproto connection ended: the server's close frame (None if the TCP
    connection ended without one) and whether the socket reached EOF."""

    code: int | None
    reason: str | None
    eof: bool


@dataclass
class Rejection:
    status: int
    headers: dict[str, str]
    body: bytes = b""


@dataclass
class WsprotoClient:
    """One wsproto client connection on a blocking socket."""

    sock: socket.socket
    conn: WSConnection
    accepted: wp.AcceptConnection | None = None
    rejection: Rejection | None = None
    pings: list[bytes] = field(default_factory=list)
    auto_pong: bool = True
    eof: bool = False
    bytes_received: int = 0  # on the wire, the handshake included
    bytes_sent: int = 0
    _events: list[wp.Event] = field(default_factory=list)

    @classmethod
    def open(
        cls,
        host: str,
        port: int,
        path: str,
        *,
        subprotocols: Sequence[str] = (),
        extensions: Sequence[Extension] = (),
        extra_headers: Sequence[tuple[bytes, bytes]] = (),
        auto_pong: bool = True,
        receive_buffer: int | None = None,
        source: str | None = None,
        timeout: float = 10.0,
    ) -> WsprotoClient:
        """Connect and handshake; ``source``: the local address to connect from (any
        127.0.0.0/8 address works on Linux: an untrusted peer for proxy tests)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if source is not None:
            sock.bind((source, 0))
        if receive_buffer is not None:  # before connect: it sets the advertised window
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.settimeout(timeout)
        sock.connect((host, port))
        client = cls(sock, WSConnection(ConnectionType.CLIENT), auto_pong=auto_pong)
        request = wp.Request(
            host=f"{host}:{port}",
            target=path,
            subprotocols=list(subprotocols),
            extensions=list(extensions),
            extra_headers=list(extra_headers),
        )
        client.write(client.conn.send(request))
        client._handshake(time.monotonic() + timeout)
        return client

    def _handshake(self, deadline: float) -> None:
        while self.accepted is None and self.rejection is None:
            for event in self._read_events(deadline):
                if isinstance(event, wp.AcceptConnection):
                    self.accepted = event
                elif isinstance(event, wp.RejectConnection):
                    headers = {k.decode().lower(): v.decode() for k, v in event.headers}
                    self.rejection = Rejection(event.status_code, headers)
                    if not event.has_body:
                        return
                elif isinstance(event, wp.RejectData):
                    assert self.rejection is not None
                    self.rejection.body += event.data
                    if event.body_finished:
                        return
                else:
                    self._events.append(event)

    def _read_events(self, deadline: float) -> list[wp.Event]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no WebSocket event before the deadline")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(262144)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
        self.bytes_received += len(data)
        self.conn.receive_data(data or None)
        return list(self.conn.events())

    # -- sending -------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Bytes as they are (handmade frames too)."""
        self.sock.sendall(data)
        self.bytes_sent += len(data)

    def send_text(self, text: str) -> None:
        self.write(self.conn.send(wp.TextMessage(data=text)))

    def send_bytes(self, data: bytes) -> None:
        self.write(self.conn.send(wp.BytesMessage(data=data)))

    def send_texts(self, texts: Iterable[str]) -> None:
        """Several messages in one write (one read for the server, most likely)."""
        self.write(b"".join(self.conn.send(wp.TextMessage(data=t)) for t in texts))

    def send_json(self, document: Any) -> None:
        self.send_text(json.dumps(document))

    def close(self, code: int = 1000, reason: str = "") -> None:
        self.write(self.conn.send(wp.CloseConnection(code=code, reason=reason)))

    # -- receiving -----------------------------------------------------------------------

    def next_event(self, timeout: float = 10.0) -> wp.Event | None:
        """The next event (pings answered unless ``auto_pong`` is off); None at EOF."""
        deadline = time.monotonic() + timeout
        while not self._events:
            if self.eof:
                return None
            self._events.extend(self._read_events(deadline))
        event = self._events.pop(0)
        if isinstance(event, wp.Ping):
            self.pings.append(bytes(event.payload))
            if self.auto_pong:
                self.write(self.conn.send(event.response()))
        return event

    def receive(self, timeout: float = 10.0) -> str | bytes:
        """The next whole message (pings and pongs in between are handled)."""
        deadline = time.monotonic() + timeout
        parts: list[Any] = []
        while True:
            event = self.next_event(max(0.0, deadline - time.monotonic()))
            if event is None or isinstance(event, wp.CloseConnection):
                raise AssertionError(f"connection closed while a message was expected: {event}")
            if isinstance(event, wp.TextMessage | wp.BytesMessage):
                parts.append(event.data)
                if event.message_finished:
                    return "".join(parts) if isinstance(event, wp.TextMessage) else b"".join(parts)

    def receive_json(self, timeout: float = 10.0) -> Any:
        message = self.receive(timeout)
        assert isinstance(message, str), message
        return json.loads(message)

    def wait_closed(self, timeout: float = 10.0) -> Closed:
        """Read (and drop messages) until the server's close frame, answer it, then
        read to EOF: how the server ended the connection."""
        deadline = time.monotonic() + timeout
        while True:
            event = self.next_event(max(0.0, deadline - time.monotonic()))
            if event is None:
                return Closed(None, None, True)
            if isinstance(event, wp.CloseConnection):
                if self.conn.state is ConnectionState.REMOTE_CLOSING:  # the server began
                    # (it may hang up right after its close frame)
                    with contextlib.suppress(OSError):
                        self.write(self.conn.send(event.response()))
                return Closed(event.code, event.reason, self._read_to_eof(deadline))

    def _read_to_eof(self, deadline: float) -> bool:
        while not self.eof:
            try:
                self._read_events(deadline)
            except TimeoutError:
                return False
            except Exception:  # wsproto refuses data after the close: still not EOF
                return False
        return True

    def shutdown(self) -> None:
        self.sock.close()

    def __enter__(self) -> WsprotoClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


def deflate_offer(**params: Any) -> list[Extension]:
    return [PerMessageDeflate(**params)]


def random_key() -> str:
    return base64.b64encode(os.urandom(16)).decode()


def get_json(server: Any, path: str) -> Any:
    """GET ``path`` over plain HTTP (a new connection each time); its JSON body."""
    response = httpx.get(server.url + path, timeout=10)
    assert response.status_code == 200, (path, response.status_code, response.text)
    return response.json()


def frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    masked: bool = True,
    rsv1: bool = False,
    rsv2: bool = False,
) -> bytes:
    """One client frame made by hand (RFC 6455 §5.2), for what wsproto will not send."""
    head = bytes([(0x80 if fin else 0) | (0x40 if rsv1 else 0) | (0x20 if rsv2 else 0) | opcode])
    size = len(payload)
    mask_bit = 0x80 if masked else 0
    if size < 126:
        head += bytes([mask_bit | size])
    elif size < 65536:
        head += bytes([mask_bit | 126]) + size.to_bytes(2, "big")
    else:
        head += bytes([mask_bit | 127]) + size.to_bytes(8, "big")
    if not masked:
        return head + payload
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
