"""Sustained, bounded HTTP load for scenario tests: keep-alive clients in threads that
count every outcome, so a test can assert "0 failed requests" through an event.

Each client thread owns one connection and sends ``GET path`` in a loop. A request
fails if the connection is refused or reset, closes before a full response, times
out, or answers 5xx. A response carrying ``connection: close`` is a success; the
client then reconnects (that is how a draining worker hands its clients over).
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass, field

from .rawhttp import RawConnection


@dataclass
class LoadResult:
    ok: int = 0
    failures: collections.Counter[str] = field(default_factory=collections.Counter)
    pids: collections.Counter[str] = field(default_factory=collections.Counter)

    @property
    def failed(self) -> int:
        return sum(self.failures.values())


class Load:
    """``with Load(port, clients=8): ...`` runs load for the duration of the block."""

    def __init__(
        self,
        port: int,
        *,
        clients: int = 8,
        path: str = "/",
        host: str = "127.0.0.1",
        timeout: float = 10.0,
        pause: float = 0.0,
        max_requests: int = 1_000_000,
    ) -> None:
        self.port, self.host, self.path = port, host, path
        self.clients, self.timeout, self.pause = clients, timeout, pause
        self.max_requests = max_requests
        self.result = LoadResult()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sent = 0

    def __enter__(self) -> Load:
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
                raise AssertionError(f"load made no progress: {self.result}")
            if self._stop.wait(0.01):
                return

    def _record(self, failure: str | None, pid: str | None = None) -> None:
        with self._lock:
            if failure is None:
                self.result.ok += 1
                if pid:
                    self.result.pids[pid] += 1
            else:
                self.result.failures[failure] += 1

    def _client(self) -> None:
        conn: RawConnection | None = None
        request = (f"GET {self.path} HTTP/1.1\r\nHost: load\r\n\r\n").encode()
        while not self._stop.is_set():
            with self._lock:
                if self._sent >= self.max_requests:
                    return
                self._sent += 1
            try:
                if conn is None:
                    conn = RawConnection(self.host, self.port, timeout=self.timeout)
                conn.send(request)
                response = conn.read_response()
            except ConnectionRefusedError:
                self._record("refused")
                conn = _closed(conn)
                continue
            except ConnectionResetError:
                self._record("reset")
                conn = _closed(conn)
                continue
            except TimeoutError:
                self._record("timeout")
                conn = _closed(conn)
                continue
            except (ConnectionError, OSError) as exc:
                self._record(f"eof:{type(exc).__name__}")
                conn = _closed(conn)
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


def _closed(conn: RawConnection | None) -> None:
    """Close a connection that failed (and say there is none now)."""
    if conn is not None:
        conn.close()


def report(what: str, *results: LoadResult) -> None:
    """Print a scenario's figures (``pytest -s`` shows them; docs/operations.md quotes them)."""
    ok = sum(result.ok for result in results)
    failed = sum(result.failed for result in results)
    workers = len({pid for result in results for pid in result.pids})
    print(f"{what}: {ok} requests ok on {workers} worker pids, {failed} failed")
