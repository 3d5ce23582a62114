"""Run an app under a real uvicorn process, on a socket bound here (``--fd``).

Like ``support.process.Covetd``: no free-port race, readiness is a real HTTP answer
waited for with a deadline, and stop() leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from support.process import REPO, listening_socket, wait_for


class Uvicorn:
    """One ``python -m uvicorn APP --fd N`` process under test."""

    def __init__(
        self,
        app: str,
        *,
        app_dir: Path = REPO,
        args: Iterable[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.app = app
        self.app_dir = app_dir
        self.sock: socket.socket | None = listening_socket()
        self.host = "127.0.0.1"
        self.port = self.sock.getsockname()[1]
        self.args = list(args)
        self.env = dict(os.environ, **(env or {}))
        self.env.setdefault("PYTHONUNBUFFERED", "1")
        self._dir = tempfile.TemporaryDirectory(prefix="uvicorn-test-")
        self.log_path = Path(self._dir.name) / "uvicorn.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, wait: bool = True) -> Uvicorn:
        assert self.sock is not None
        fd = self.sock.fileno()
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                self.app,
                "--fd",
                str(fd),
                "--app-dir",
                str(self.app_dir),
                "--lifespan",
                "on",
                *self.args,
            ],
            cwd=REPO,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            pass_fds=(fd,),
            start_new_session=True,
        )
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 15.0) -> None:
        def answered() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"uvicorn exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as conn:
                    conn.sendall(b"GET /__probe__ HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                    return conn.recv(16).startswith(b"HTTP/1.1 ")
            except OSError:
                return False

        wait_for(answered, timeout, 0.05, "uvicorn to answer HTTP")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 15.0) -> int | None:
        """TERM, wait, then KILL the process group; returns the exit status."""
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
            self.proc = None
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        self._dir.cleanup()
        return code

    def __enter__(self) -> Uvicorn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
