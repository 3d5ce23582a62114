"""``RawConnection`` over a unix stream socket (covetd's ``unix:/path`` binds)."""

from __future__ import annotations

import socket

from .rawhttp import RawConnection, RawResponse


class UnixConnection(RawConnection):
    def __init__(self, path: str, timeout: float = 5.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(path)
        except OSError:
            self.sock.close()
            raise
        self.buffer = b""


def unix_get(path: str, target: str = "/", timeout: float = 5.0) -> RawResponse:
    """One request on a fresh unix-socket connection (``Connection: close``)."""
    with UnixConnection(path, timeout) as conn:
        conn.send(f"GET {target} HTTP/1.1\r\nHost: unix\r\nConnection: close\r\n\r\n".encode())
        return conn.read_response()
