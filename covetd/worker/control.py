"""The control channel between the master and one worker: a unix socketpair.

Worker → master, one line each:

    ready                 app started, listening: the worker counts as serving
    beat <served>         heartbeat from inside the event loop (a blocked loop is silent)
    recycle <reason>      the worker asks to be replaced (max_requests); it keeps
                          serving until the master retires it
    adopted <id>          a listening socket sent by the master is being accepted on

Master → worker: ``retire`` (drain and exit: a replacement is serving), ``adopt
<id>`` with the socket's descriptor attached (SCM_RIGHTS), ``release <id>``. Stopping
the whole server travels as signals (TERM, QUIT, USR1), as operators expect.

Both ends are non-blocking; lines are short and ASCII. A worker whose channel breaks
has lost its master: it stops.
"""

from __future__ import annotations

import array
import socket
from collections.abc import Iterator

__all__ = ["LineReader", "recv_with_fds", "send_line", "send_with_fd"]

MAX_LINE = 4096


def send_line(sock: socket.socket, *words: object) -> bool:
    """Send one line; False if the peer is gone or the buffer is full (a beat or two
    lost is harmless; the master notices silence only after worker_timeout)."""
    try:
        sock.send((" ".join(str(w) for w in words) + "\n").encode("ascii"))
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return False
    return True


def send_with_fd(sock: socket.socket, line: str, fd: int) -> None:
    socket.send_fds(sock, [(line + "\n").encode("ascii")], [fd])


def recv_with_fds(sock: socket.socket) -> tuple[bytes, list[int]]:
    """Receive what is pending, with any descriptors attached to it."""
    fds = array.array("i")
    data, ancdata, _flags, _addr = sock.recvmsg(MAX_LINE, socket.CMSG_LEN(16 * fds.itemsize))
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - (len(payload) % fds.itemsize)])
    return data, list(fds)


class LineReader:
    """Splits a byte stream into lines; drops a line longer than ``MAX_LINE``."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> Iterator[list[str]]:
        self._buffer += data
        while b"\n" in self._buffer:
            line, _, self._buffer = self._buffer.partition(b"\n")
            words = line.decode("ascii", "replace").split()
            if words:
                yield words
        if len(self._buffer) > MAX_LINE:
            self._buffer = b""
