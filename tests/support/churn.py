"""New connections arriving all the time, for scenario tests: the other half of real
traffic next to ``support.load.Load``'s keep-alive clients.

Each client thread opens a connection, sends ``requests_per_connection`` requests
(``GET path``; the last one with ``Connection: close``), and starts over, so
connections keep landing in the listening sockets' accept queues while workers are
replaced, retired or added, and some of them live on as keep-alive connections. A
response with ``connection: close`` ends a connection early (a draining worker hands
its clients over that way). A request fails if the connection is refused or reset,
closes before a full response, times out, or answers 5xx; every success counts the
``x-worker-pid`` that answered.
"""

from __future__ import annotations

import threading
import time

from .load import LoadResult
from .rawhttp import RawConnection


class Churn:
    """``with Churn(port, clients=2): ...`` opens connections for the duration of the block."""

    def __init__(
        self,
        port: int,
        *,
        clients: int = 2,
        path: str = "/",
        host: str = "127.0.0.1",
        timeout: float = 10.0,
        requests_per_connection: int = 1,
    ) -> None:
        self.port, self.host, self.path = port, host, path
        self.clients, self.timeout = clients, timeout
        self.per_connection = requests_per_connection
        self.result = LoadResult()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> Churn:
        for _ in range(self.clients):
            thread = threading.Thread(target=self._client, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> LoadResult:
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout + 5)
        self._threads.clear()
        return self.result

    def wait_for_requests(self, count: int, timeout: float = 20.0) -> None:
        """Block until ``count`` more requests succeeded (a deadline, not a sleep)."""
        target = self.result.ok + count
        deadline = time.monotonic() + timeout
        while self.result.ok < target:
            if time.monotonic() > deadline:
                raise AssertionError(f"churn made no progress: {self.result}")
            if self._stop.wait(0.01):
                return

    def _client(self) -> None:
        while not self._stop.is_set():
            self._connection()

    def _connection(self) -> None:
        """One connection, until its last request, a ``connection: close`` or a failure."""
        try:
            conn = RawConnection(self.host, self.port, timeout=self.timeout)
        except OSError as exc:
            self._record(_failure(exc))
            return
        with conn:
            for number in range(1, self.per_connection + 1):
                last = number == self.per_connection or self._stop.is_set()
                close = "Connection: close\r\n" if last else ""
                try:
                    conn.send(f"GET {self.path} HTTP/1.1\r\nHost: churn\r\n{close}\r\n".encode())
                    response = conn.read_response()
                except OSError as exc:
                    self._record(_failure(exc))
                    return
                if response.status >= 500:
                    self._record(f"status:{response.status}")
                else:
                    self._record(None, response.header("x-worker-pid"))
                if last or response.header("connection") == "close":
                    return

    def _record(self, failure: str | None, pid: str | None = None) -> None:
        with self._lock:
            if failure is None:
                self.result.ok += 1
                if pid:
                    self.result.pids[pid] += 1
            else:
                self.result.failures[failure] += 1


def _failure(exc: OSError) -> str:
    """The kind of failure, named as ``support.load.Load`` names it."""
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, ConnectionResetError):
        return "reset"
    if isinstance(exc, TimeoutError):
        return "timeout"
    return f"eof:{type(exc).__name__}"
