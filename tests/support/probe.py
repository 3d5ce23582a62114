"""Helpers for the engine's integration tests against ``tests/apps/engine_probe.py``.

They ask the probe app, over a fresh connection, what happened elsewhere (a counter, a
handler's state), and check how a connection ended. Negative checks ("nothing more
arrives") are blocking reads with a socket timeout, never sleeps.
"""

from __future__ import annotations

import json
import re
import socket
from typing import Any

from .process import Covetd, wait_for
from .rawhttp import RawConnection, RawResponse


def request(path: str, method: str = "GET", *, version: str = "1.1", headers: str = "") -> bytes:
    """A body-less request for ``path`` with a Host header (and ``headers``, CRLF-ended)."""
    return f"{method} {path} HTTP/{version}\r\nHost: probe\r\n{headers}\r\n".encode("latin-1")


def fetch(server: Covetd, data: bytes, timeout: float = 5.0) -> RawResponse:
    """Send ``data`` on a new connection and read one response."""
    with RawConnection(server.host, server.port, timeout) as conn:
        conn.send(data)
        return conn.read_response(head_request=data.startswith(b"HEAD "))


def get_json(server: Covetd, path: str) -> Any:
    response = fetch(server, request(path, headers="Connection: close\r\n"))
    assert response.status == 200, (path, response)
    return json.loads(response.body)


def counter(server: Covetd, key: str) -> int:
    """How many requests reached the ``/count/{key}`` handler."""
    return int(get_json(server, f"/counts/{key}")["count"])


def state(server: Covetd, key: str) -> Any:
    return get_json(server, f"/state/{key}")["state"]


def wait_for_state(server: Covetd, key: str, wanted: Any, timeout: float = 5.0) -> None:
    wait_for(lambda: state(server, key) == wanted, timeout, 0.02, f"state {key} == {wanted!r}")


def assert_error_and_close(conn: RawConnection, status: int) -> RawResponse:
    """The next response is ``status`` with ``connection: close``; then the server closes
    the connection without sending anything else."""
    response = read_response(conn)
    assert response.status == status, response
    assert response.header("connection") == "close", response.headers
    assert_closed_without_more(conn)
    return response


def assert_closed_without_more(conn: RawConnection, timeout: float = 5.0) -> None:
    """The server closes the connection and sends nothing more before it does."""
    assert conn.is_closed(timeout), f"connection still open after {timeout}s"
    assert conn.buffer == b"", f"unexpected bytes after the last response: {conn.buffer!r}"


def read_response(conn: RawConnection, head_request: bool = False) -> RawResponse:
    """One response whose status line starts exactly at the next byte: a stray byte
    left by the previous response (a body after HEAD, a miscounted length) fails here
    instead of being skipped over by ``RawConnection.read_response``."""
    status_line = conn.read_until(b"\r\n")
    assert re.fullmatch(rb"HTTP/1\.1 \d\d\d [^\r\n]*\r\n", status_line), status_line
    conn.buffer = status_line + conn.buffer
    return conn.read_response(head_request)


def read_responses_until_close(conn: RawConnection) -> list[RawResponse]:
    """Every response the server sends before it closes the connection."""
    responses = []
    while True:
        try:
            responses.append(read_response(conn))
        except ConnectionError:
            assert conn.buffer == b"", f"closed in the middle of a response: {conn.buffer!r}"
            return responses


def nothing_arrives(conn: RawConnection, seconds: float) -> bool:
    """True when no byte and no EOF arrives within ``seconds`` (a blocking read)."""
    if conn.buffer:
        return False
    conn.sock.settimeout(seconds)
    try:
        chunk = conn.sock.recv(65536)
    except TimeoutError:
        return True
    except ConnectionResetError:
        return False
    finally:
        conn.sock.settimeout(5.0)
    conn.buffer += chunk
    return False


class SmallWindowConnection(RawConnection):
    """A connection whose receive buffer is fixed small before connecting (so the
    kernel does not autotune it): a client that stops reading stalls the server fast."""

    def __init__(self, host: str, port: int, rcvbuf: int = 16384, timeout: float = 5.0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.buffer = b""
