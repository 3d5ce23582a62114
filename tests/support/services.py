"""Real PostgreSQL and Redis for tests (DESIGN.md §7).

Each service is found in this order: the URL in ``COVETD_TEST_REDIS_URL`` /
``COVETD_TEST_DATABASE_URL``; a server already listening on 127.0.0.1 (6379 / 5432);
a throwaway server started here in a temp dir (``redis-server``; ``initdb`` +
``pg_ctl``) when the binaries exist. Otherwise the test fails (under ``CI=true``) or
is skipped, with a message saying how to get one. Throwaway servers are stopped at
the end of the session.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from typing import Any

import pytest

__all__ = ["postgres_dsn", "redis_url"]

_clusters: list[Any] = []
_started: list[subprocess.Popen[bytes]] = []


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _unavailable(what: str, how: str) -> None:
    message = f"no {what} for the tests: {how}"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def _wait_listening(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 20
    while not _listening("127.0.0.1", port):
        if proc.poll() is not None or time.monotonic() > deadline:
            _unavailable(what, f"the throwaway {what} did not start (exit {proc.poll()})")
        time.sleep(0.05)


def redis_url() -> str:
    """A Redis URL to test against (see the module docstring)."""
    if url := os.environ.get("COVETD_TEST_REDIS_URL"):
        return url
    if _listening("127.0.0.1", 6379):
        return "redis://127.0.0.1:6379/0"
    binary = shutil.which("redis-server")
    if binary is None:
        _unavailable(
            "Redis",
            "set COVETD_TEST_REDIS_URL, run one on 127.0.0.1:6379, "
            "or install redis-server (apt-get install redis-server)",
        )
    port = _free_port()
    workdir = tempfile.mkdtemp(prefix="covetd-redis-")
    proc = subprocess.Popen(
        [
            str(binary),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _started.append(proc)
    _wait_listening(port, proc, "Redis")
    return f"redis://127.0.0.1:{port}/0"


def postgres_dsn() -> str:
    """A PostgreSQL DSN to test against (see the module docstring)."""
    if dsn := os.environ.get("COVETD_TEST_DATABASE_URL"):
        return dsn
    if _listening("127.0.0.1", 5432):
        return "postgresql://postgres@127.0.0.1:5432/test"
    from .pgcluster import PgCluster  # initdb + postgres in a temp dir (as "postgres" if root)

    cluster = PgCluster().start()
    _clusters.append(cluster)
    return cluster.dsn


@atexit.register
def _stop_started() -> None:
    for cluster in _clusters:
        cluster.close()
    for proc in _started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
