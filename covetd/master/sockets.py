"""Listening sockets: bound once, before any worker exists, kept for the master's life.

With ``server.reuse_port`` (Linux), each TCP address gets one SO_REUSEPORT socket per
worker *slot* (the nginx model): the kernel spreads connections over the slots, and
since the master holds every socket, a worker that dies or is replaced never takes
its accept queue with it; its replacement accepts on the same socket. Unix sockets,
``fd://N`` and systemd-activated sockets are *shared*: every worker accepts on them.

No socket is ever closed while the master runs (closing one would reset the
connections queued on it): when a slot goes away (TTOU) its sockets move to another
slot, and come back to the next new slot (TTIN).
"""

from __future__ import annotations

import grp
import os
import pwd
import socket
import stat
from dataclasses import dataclass, field

from ..config import BindAddress
from ..config.bind import parse_bind

__all__ = ["BindError", "Listener", "SocketPool", "bind_one"]

INHERIT_ENV = "COVETD_LISTENERS"  # set for a re-executed master (USR2)


class BindError(Exception):
    """A listening socket could not be set up; the message names the address."""


@dataclass(eq=False)
class Listener:
    """One listening socket and who accepts on it (``slot`` None: every worker)."""

    id: int
    address: str
    sock: socket.socket
    slot: int | None
    per_slot: bool = field(default=False)

    @property
    def fd(self) -> int:
        return self.sock.fileno()


class SocketPool:
    """The master's listening sockets and their assignment to worker slots."""

    def __init__(self, backlog: int, reuse_port: bool) -> None:
        self.backlog = backlog
        self.reuse_port = reuse_port and hasattr(socket, "SO_REUSEPORT")
        self.listeners: list[Listener] = []
        self._templates: list[BindAddress] = []  # TCP addresses bound once per slot
        self._next_id = 0

    # -- opening ---------------------------------------------------------------------

    def bind(
        self, addresses: tuple[BindAddress, ...], *, unix_mode: int | None, unix_owner: str | None
    ) -> None:
        """Bind every address (slot 0's sockets for per-slot TCP addresses)."""
        try:
            for address in addresses:
                per_slot = address.kind == "tcp" and self.reuse_port
                sock = bind_one(
                    address,
                    backlog=self.backlog,
                    reuse_port=per_slot,
                    unix_mode=unix_mode,
                    unix_owner=unix_owner,
                )
                self._add(str(address), sock, 0 if per_slot else None, per_slot)
                if per_slot:
                    self._templates.append(address)
        except BaseException:
            self.close()
            raise

    def adopt(self, sockets: list[tuple[str, socket.socket]]) -> None:
        """Use sockets opened by someone else (systemd, ``fd://``): shared by all."""
        for name, sock in sockets:
            sock.setblocking(False)
            self._add(name, sock, None, False)

    def inherit(self, spec: str) -> None:
        """Take over the sockets of the master that re-executed us (USR2)."""
        for entry in filter(None, spec.split(";")):
            fd_text, slot_text, address = entry.split(",", 2)
            sock = socket.socket(fileno=int(fd_text))
            sock.setblocking(False)
            slot = None if slot_text == "-" else int(slot_text)
            self._add(address, sock, slot, slot is not None)
            if slot is not None and address not in {str(t) for t in self._templates}:
                self._templates.append(parse_bind(address))

    def inherit_spec(self) -> str:
        """What ``inherit`` needs, for the environment of a re-executed master."""
        return ";".join(
            f"{item.fd},{'-' if item.slot is None else item.slot},{item.address}"
            for item in self.listeners
        )

    def _add(self, address: str, sock: socket.socket, slot: int | None, per_slot: bool) -> None:
        self.listeners.append(Listener(self._next_id, address, sock, slot, per_slot))
        self._next_id += 1

    # -- slots -----------------------------------------------------------------------

    def for_slot(self, slot: int) -> list[Listener]:
        return [item for item in self.listeners if item.slot is None or item.slot == slot]

    def ensure_slot(self, slot: int) -> list[tuple[Listener, int]]:
        """Give ``slot`` one socket per per-slot address: a spare one if another slot
        holds more than one (left by a TTOU), else a new SO_REUSEPORT socket.
        Returns the spares taken, with the slot that had them (its worker must release
        them)."""
        taken: list[tuple[Listener, int]] = []
        for template in self._templates:
            address = str(template)
            if any(i.slot == slot and i.address == address for i in self.listeners):
                continue
            spare = self._spare(address)
            if spare is not None and spare.slot is not None:
                taken.append((spare, spare.slot))
                spare.slot = slot
            else:
                sock = bind_one(template, backlog=self.backlog, reuse_port=True)
                self._add(address, sock, slot, True)
        return taken

    def _spare(self, address: str) -> Listener | None:
        by_slot: dict[int, list[Listener]] = {}
        for item in self.listeners:
            if item.per_slot and item.address == address and item.slot is not None:
                by_slot.setdefault(item.slot, []).append(item)
        for held in by_slot.values():
            if len(held) > 1:
                return held[-1]
        return None

    def move_slot(self, source: int, target: int) -> list[Listener]:
        """Hand ``source``'s sockets to ``target`` (TTOU); returns what moved."""
        moved = [item for item in self.listeners if item.slot == source]
        for item in moved:
            item.slot = target
        return moved

    def close(self) -> None:
        for item in self.listeners:
            item.sock.close()
        self.listeners.clear()


def bind_one(
    address: BindAddress,
    *,
    backlog: int,
    reuse_port: bool = False,
    unix_mode: int | None = None,
    unix_owner: str | None = None,
) -> socket.socket:
    try:
        if address.kind == "fd":
            assert address.fd is not None
            sock = socket.socket(fileno=address.fd)
        elif address.kind == "unix":
            assert address.path is not None
            sock = _bind_unix(address.path, unix_mode, unix_owner)
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
        if reuse_port:
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


def _bind_unix(path: str, mode: int | None, owner: str | None) -> socket.socket:
    _remove_stale_unix_socket(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        if mode is not None:
            os.chmod(path, mode)
        if owner:
            user, _, group = owner.partition(":")
            uid = pwd.getpwnam(user).pw_uid if user else -1
            gid = grp.getgrnam(group).gr_gid if group else -1
            os.chown(path, uid, gid)
    except KeyError as exc:
        sock.close()
        raise OSError(22, f"unknown user or group in unix_socket_owner: {exc}") from None
    except BaseException:
        sock.close()
        raise
    return sock
