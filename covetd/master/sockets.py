"""Listening sockets: bound once, before any worker exists, and kept for the process's life.

Binding belongs to whoever outlives the workers (the master); workers only accept on
what they are given. TCP (IPv4/IPv6), unix sockets and inherited descriptors.
"""

from __future__ import annotations

import os
import socket
import stat

from ..config import BindAddress

__all__ = ["BindError", "bind_all", "bind_one"]


class BindError(Exception):
    """A listening socket could not be set up; the message names the address."""


def bind_all(
    addresses: tuple[BindAddress, ...],
    *,
    backlog: int,
    reuse_port: bool = False,
    unix_mode: int | None = None,
) -> list[socket.socket]:
    sockets: list[socket.socket] = []
    try:
        for address in addresses:
            sockets.append(
                bind_one(address, backlog=backlog, reuse_port=reuse_port, unix_mode=unix_mode)
            )
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def bind_one(
    address: BindAddress, *, backlog: int, reuse_port: bool = False, unix_mode: int | None = None
) -> socket.socket:
    try:
        if address.kind == "fd":
            assert address.fd is not None
            sock = socket.socket(fileno=address.fd)
        elif address.kind == "unix":
            assert address.path is not None
            sock = _bind_unix(address.path, unix_mode)
        else:
            sock = _bind_tcp(address.host or "127.0.0.1", address.port or 0, reuse_port)
        sock.listen(backlog)
    except OSError as exc:
        raise BindError(f"cannot listen on {address}: {exc.strerror or exc}") from exc
    sock.setblocking(False)
    return sock


def _bind_tcp(host: str, port: int, reuse_port: bool) -> socket.socket:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, sockaddr = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port and hasattr(socket, "SO_REUSEPORT"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(sockaddr)
    except BaseException:
        sock.close()
        raise
    return sock


def _remove_stale_unix_socket(path: str) -> None:
    """Unlink ``path`` if it is a socket nobody listens on (left by an earlier run)."""
    try:
        if not stat.S_ISSOCK(os.stat(path).st_mode):
            return
    except FileNotFoundError:
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except ConnectionRefusedError:
        os.unlink(path)
    else:
        raise OSError(98, "another process is listening on it")
    finally:
        probe.close()


def _bind_unix(path: str, mode: int | None) -> socket.socket:
    _remove_stale_unix_socket(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        if mode is not None:
            os.chmod(path, mode)
    except BaseException:
        sock.close()
        raise
    return sock
