"""The ``local`` broadcast backend: every worker of this host, no infrastructure.

Each worker listens on a unix socket in a directory shared by the workers of one
master (``<runtime dir>/covetd-<master pid>-ws/<worker pid>.sock``) and publishes a
broadcast by writing it to every other worker's socket: one stream per pair of
workers, so a publisher's messages arrive in the order it sent them. A peer that
does not read (its buffer grows past ``PEER_BUFFER``) is disconnected rather than
allowed to grow this worker's memory; a crashed worker's leftover socket is removed
by the first publisher that finds nobody listening on it.

Invariants:

- a worker binds its socket before it serves, and a publisher lists the directory
  again whenever its modification time changed (one ``stat`` per broadcast): a
  broadcast that starts after a new worker (a replacement) could accept a member
  reaches that worker;
- one stream per peer, ever: publishers that find a peer unconnected at the same
  time wait for the same connection (two streams would reorder a publisher's
  messages).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import struct
import tempfile
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .hub import Hub

__all__ = ["LocalBackend", "decode_frames", "encode_frame"]

error_log = logging.getLogger("covetd.error")

PEER_BUFFER = 4 * 1024 * 1024
# File times come from a coarse clock (a few ms): a listing taken this soon after the
# directory's last change may have missed a second change with the same time stamp.
SETTLED_NS = 50_000_000
_HEADER = struct.Struct("!IHB")  # frame length, room length, kind (0 text, 1 bytes)


def encode_frame(room: str, message: str | bytes) -> bytes:
    room_bytes = room.encode("utf-8")
    if isinstance(message, str):
        kind, payload = 0, message.encode("utf-8")
    else:
        kind, payload = 1, bytes(message)
    body_length = 3 + len(room_bytes) + len(payload)
    return _HEADER.pack(body_length, len(room_bytes), kind) + room_bytes + payload


def decode_frames(buffer: bytearray) -> list[tuple[str, str | bytes]]:
    """Complete frames at the start of ``buffer`` (consumed from it)."""
    frames: list[tuple[str, str | bytes]] = []
    while len(buffer) >= 4:
        (length,) = struct.unpack_from("!I", buffer)
        if len(buffer) < 4 + length:
            break
        _, room_length, kind = _HEADER.unpack_from(buffer)
        start = _HEADER.size
        room = bytes(buffer[start : start + room_length]).decode("utf-8")
        payload = bytes(buffer[start + room_length : 4 + length])
        frames.append((room, payload.decode("utf-8") if kind == 0 else payload))
        del buffer[: 4 + length]
    return frames


def runtime_directory(master_pid: int) -> Path:
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(base) / f"covetd-{master_pid}-ws"


class _Inbox(asyncio.Protocol):
    """One peer's stream of broadcasts into this worker's hub."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        for room, message in decode_frames(self.buffer):
            self.hub.deliver(room, message)


class LocalBackend:
    """Broadcast between the workers of one master over unix sockets."""

    def __init__(self, directory: Path | None = None, ident: str | None = None) -> None:
        self.directory = directory or runtime_directory(os.getppid())
        self.ident = ident or str(os.getpid())
        self.path = self.directory / f"{self.ident}.sock"
        self._server: asyncio.AbstractServer | None = None
        self._peers: dict[Path, asyncio.Transport] = {}
        self._connecting: dict[Path, asyncio.Task[asyncio.Transport | None]] = {}
        self._listing: list[Path] = []
        self._listed_mtime = -1

    async def start(self, hub: Hub) -> None:
        loop = asyncio.get_running_loop()
        for attempt in (1, 2, 3):
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            try:
                self._server = await loop.create_unix_server(lambda: _Inbox(hub), str(self.path))
                return
            except FileNotFoundError:  # the last worker of a generation removed it
                if attempt == 3:
                    raise

    async def publish(self, room: str, message: str | bytes) -> None:
        frame = encode_frame(room, message)
        for peer in self._peer_paths():
            transport = self._peers.get(peer)
            if transport is None or transport.is_closing():
                transport = await self._connect(peer)
                if transport is None:
                    continue
            if transport.get_write_buffer_size() > PEER_BUFFER:
                error_log.warning("worker %s does not read broadcasts; dropping it", peer.stem)
                transport.abort()
                self._peers.pop(peer, None)
                continue
            transport.write(frame)

    async def subscribe(self, room: str) -> None:
        """Every worker hears every broadcast; rooms are filtered on delivery."""

    async def unsubscribe(self, room: str) -> None:
        """See ``subscribe``."""

    def _peer_paths(self) -> list[Path]:
        """The other workers' sockets, listed again whenever the directory changed."""
        try:
            mtime = os.stat(self.directory).st_mtime_ns
        except OSError:
            return []
        if mtime != self._listed_mtime:
            self._listing = [p for p in self.directory.glob("*.sock") if p != self.path]
            settled = time.time_ns() - mtime > SETTLED_NS
            self._listed_mtime = mtime if settled else -1
        return self._listing

    def _connect(self, peer: Path) -> Awaitable[asyncio.Transport | None]:
        """The peer's one stream: publishers that ask at once share one attempt."""
        pending = self._connecting.get(peer)
        if pending is None:
            pending = asyncio.get_running_loop().create_task(self._open(peer))
            self._connecting[peer] = pending
            pending.add_done_callback(lambda _: self._connecting.pop(peer, None))
        return asyncio.shield(pending)

    async def _open(self, peer: Path) -> asyncio.Transport | None:
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_unix_connection(asyncio.Protocol, str(peer))
        except ConnectionRefusedError:
            with contextlib.suppress(FileNotFoundError):
                peer.unlink()  # left behind by a worker that died
            return None
        except OSError:
            return None
        self._peers[peer] = transport
        return transport

    async def stop(self) -> None:
        for transport in self._peers.values():
            transport.close()
        self._peers.clear()
        for pending in self._connecting.values():
            pending.cancel()
        if self._server is not None:
            self._server.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        with contextlib.suppress(OSError):
            self.directory.rmdir()  # the last worker out (a starting one copes: start)
