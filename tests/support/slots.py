"""covetd on a real TCP address, with its own SO_REUSEPORT socket per worker slot.

``support.process.Covetd`` normally hands covetd one socket (``fd://N``) that every
worker shares. Tests of what the master's per-slot sockets guarantee (a dead worker's
accept queue survives) need covetd to bind them itself: ``start_per_slot`` reserves a
port (``proctree.reserve_port``) and binds covetd to ``127.0.0.1:PORT``.
"""

from __future__ import annotations

import copy
import socket
from collections.abc import Callable
from typing import Any

from .process import Covetd
from .proctree import reserve_port
from .rawhttp import RawConnection, RawResponse

APP = "master_failures:app"


def start_per_slot(
    start: Callable[..., Covetd], config: dict[str, Any], app: str = APP, **kwargs: Any
) -> Covetd:
    """Start covetd (through the ``covetd`` fixture's ``start``) bound to a reserved port."""
    reservation = reserve_port()
    port = reservation.getsockname()[1]
    settings = copy.deepcopy(config)
    settings.setdefault("server", {})["bind"] = [f"127.0.0.1:{port}"]
    try:
        server = start(app, settings, bind=False, wait=False, **kwargs)
        server.port = port
        server.wait_ready()
    finally:
        reservation.close()
    return server


def get(port: int, path: str = "/", timeout: float = 5.0) -> RawResponse:
    """One request on a fresh connection (``Connection: close``)."""
    with RawConnection("127.0.0.1", port, timeout=timeout) as conn:
        conn.send(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        return conn.read_response()


def send_request(port: int, path: str = "/") -> socket.socket:
    """Connect and send one request without reading the answer (it may queue)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5.0)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
    return sock
