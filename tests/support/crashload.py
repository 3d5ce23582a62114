"""``Load`` for scenarios where requests *are expected* to fail (a worker killed).

``support.load.Load`` drops a failed connection without closing it; under
``filterwarnings = error`` the ResourceWarning then fails the test. ``CrashLoad`` is
the same client loop with every failed connection closed. (When ``Load`` closes its
failed connections itself, this class can go.)
"""

from __future__ import annotations

import socket

from .load import Load
from .rawhttp import RawConnection

__all__ = ["CrashLoad"]


class CrashLoad(Load):
    def _client(self) -> None:
        conn: RawConnection | None = None
        request = f"GET {self.path} HTTP/1.1\r\nHost: load\r\n\r\n".encode()
        while not self._stop.is_set():
            with self._lock:
                if self._sent >= self.max_requests:
                    break
                self._sent += 1
            try:
                if conn is None:
                    conn = RawConnection(self.host, self.port, timeout=self.timeout)
                conn.send(request)
                response = conn.read_response()
            except OSError as exc:
                self._record(_failure_kind(exc))
                if conn is not None:
                    conn.close()
                conn = None
                continue
            if response.status >= 500:
                self._record(f"status:{response.status}")
            else:
                self._record(None, response.header("x-worker-pid"))
            if response.header("connection") == "close":
                conn.close()
                conn = None
            if self.pause:
                self._stop.wait(self.pause)
        if conn is not None:
            conn.close()


def _failure_kind(exc: OSError) -> str:
    """The same names as ``Load`` uses."""
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, ConnectionResetError):
        return "reset"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timeout"
    return f"eof:{type(exc).__name__}"
