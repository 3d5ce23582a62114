"""Start real covetd processes for tests and stop them without leaving anything behind.

The listening socket is bound here, on port 0, and handed to covetd as ``fd://N``:
no free-port race, and the port is known before the server starts. Readiness is a
real HTTP answer on that socket, waited for with a deadline (never a sleep).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
TEST_APPS = REPO / "tests" / "apps"


def wait_for(
    predicate: Any, timeout: float = 10.0, interval: float = 0.02, what: str = "condition"
) -> Any:
    """Poll ``predicate`` until it returns a truthy value; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def listening_socket(host: str = "127.0.0.1") -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    sock.listen(1024)
    return sock


class Covetd:
    """One covetd process under test."""

    def __init__(
        self,
        app: str,
        config: Mapping[str, Any] | None = None,
        *,
        args: Iterable[str] = (),
        env: Mapping[str, str] | None = None,
        app_dir: Path = TEST_APPS,
        bind: bool = True,
    ) -> None:
        self.app = app
        self.sock = listening_socket() if bind else None
        self.port = self.sock.getsockname()[1] if self.sock else 0
        self.host = "127.0.0.1"
        self._dir = tempfile.TemporaryDirectory(prefix="covetd-test-")
        self.config_path = Path(self._dir.name) / "covetd.yaml"
        self.log_path = Path(self._dir.name) / "covetd.log"
        settings: dict[str, Any] = {"app": app, "app_dir": str(app_dir)}
        settings.update(config or {})
        settings.setdefault("logging", {}).setdefault("format", "text")
        # Off unless a test asks: with it on, every app runs behind the access_log
        # middleware, and the ASGI tests would no longer reach the plain ASGI runner.
        settings["logging"].setdefault("access_log", False)
        # Off unless a test asks: the default metrics port would collide between tests.
        settings.setdefault("metrics", {}).setdefault("enabled", False)
        server = settings.setdefault("server", {})
        server.setdefault("workers", 1)  # one process unless a test asks for more
        if self.sock is not None:
            server["bind"] = [f"fd://{self.sock.fileno()}"]
        self.config_path.write_text(yaml.safe_dump(settings, sort_keys=False))
        self.args = list(args)
        self.env = dict(os.environ, **(env or {}))
        self.env.setdefault("PYTHONUNBUFFERED", "1")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, wait: bool = True) -> Covetd:
        pass_fds = (self.sock.fileno(),) if self.sock is not None else ()
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "covetd", "-c", str(self.config_path), *self.args],
            cwd=REPO,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            pass_fds=pass_fds,
            start_new_session=True,
        )
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 15.0) -> None:
        def answered() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"covetd exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as conn:
                    conn.sendall(b"GET /__probe__ HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                    return conn.recv(16).startswith(b"HTTP/1.1 ")
            except OSError:
                return False

        wait_for(answered, timeout, 0.05, "covetd to answer HTTP")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def wait(self, timeout: float = 15.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self, timeout: float = 15.0) -> int | None:
        """TERM, wait, then KILL the whole process group; returns the exit status."""
        code = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    code = self.proc.wait(timeout)
            code = self.proc.poll()
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            if code is None:
                code = self.proc.wait(5)
            self._log.close()
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        self._dir.cleanup()
        return code

    def __enter__(self) -> Covetd:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
