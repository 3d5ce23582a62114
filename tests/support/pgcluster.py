"""A throwaway PostgreSQL server that a test may stop and start again (and read the
sessions of), for outage and TLS scenarios. Never the machine's shared server.

``initdb`` makes a cluster in a temp dir; ``postgres`` serves it on a free port of
127.0.0.1 (and a Unix socket inside the data dir). PostgreSQL refuses to run as root,
so under root every binary runs as the ``postgres`` user (the owner of the temp dir).
``stop()`` is a fast shutdown (SIGINT: sessions are ended, as in a restart);
``start()`` serves the same data on the same port again. ``close()`` stops it and
removes the directory; an ``atexit`` guard does the same if a test forgets.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import weakref
from pathlib import Path
from typing import Any

import pytest

from .process import wait_for

_live: weakref.WeakSet[PgCluster] = weakref.WeakSet()


def _bindir() -> Path | None:
    """Where initdb, postgres and pg_isready live (``/usr/local/bin`` may hold links
    to only some of them, so follow initdb's link)."""
    initdb = shutil.which("initdb")
    if initdb is not None:
        return Path(initdb).resolve().parent
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists():
            return candidate
    return None


def _unavailable(how: str) -> None:
    """No throwaway server here: fail under CI (DESIGN §7: never skip silently there),
    skip elsewhere, saying how to get one."""
    message = f"no throwaway PostgreSQL for this test: {how}"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PgCluster:
    """``with PgCluster() as pg: ... pg.dsn ... pg.stop() ... pg.start()``."""

    def __init__(self, *, ssl: bool = False, settings: dict[str, str] | None = None) -> None:
        bindir = _bindir()
        if bindir is None:
            _unavailable("install PostgreSQL's server binaries (apt-get install postgresql)")
        assert bindir is not None
        if ssl and shutil.which("openssl") is None:
            _unavailable("install openssl (apt-get install openssl) for the TLS tests")
        self.bindir = bindir
        self.port = _free_port()
        self.ssl = ssl
        self.settings = dict(settings or {})
        self.root = Path(tempfile.mkdtemp(prefix="covetd-pgcluster-"))
        self.datadir = self.root / "data"
        self.proc: subprocess.Popen[bytes] | None = None
        self._run_as: dict[str, Any] = {}
        _live.add(self)  # from here on, close() (or the atexit guard) cleans up
        if os.geteuid() == 0:  # PostgreSQL refuses root: run it as "postgres"
            try:
                entry = pwd.getpwnam("postgres")
            except KeyError:
                _unavailable("as root, a 'postgres' user must exist to run a throwaway server")
                raise
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
            self._run_as = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
        self._run("initdb", "-D", str(self.datadir), "-U", "postgres", "-A", "trust", "--no-sync")
        if ssl:
            self._make_certificate()

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def log_path(self) -> Path:
        return self.root / "postgres.log"

    def _run(self, binary: str, *args: str) -> None:
        done = subprocess.run(
            [str(self.bindir / binary), *args], capture_output=True, **self._run_as
        )
        if done.returncode != 0:
            self.close()
            raise RuntimeError(f"{binary} failed ({done.returncode}): {done.stderr.decode()}")

    def _make_certificate(self) -> None:
        key, cert = self.datadir / "server.key", self.datadir / "server.crt"
        subprocess.run(
            [
                *("openssl", "req", "-new", "-x509", "-days", "2", "-nodes"),
                *("-subj", "/CN=localhost", "-newkey", "rsa:2048"),
                *("-keyout", str(key), "-out", str(cert)),
            ],
            check=True,
            capture_output=True,
        )
        key.chmod(0o600)
        if self._run_as:
            for path in (key, cert):
                os.chown(path, self._run_as["user"], self._run_as["group"])

    def start(self, timeout: float = 20.0) -> PgCluster:
        """Serve (again) and wait until it accepts sessions."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        options = ["-c", "fsync=off", "-c", "full_page_writes=off", "-c", "max_connections=60"]
        if self.ssl:
            options += ["-c", "ssl=on"]
        for name, value in self.settings.items():
            options += ["-c", f"{name}={value}"]
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        try:
            self.proc = subprocess.Popen(
                [
                    *(str(self.bindir / "postgres"), "-D", str(self.datadir)),
                    *("-p", str(self.port), "-h", "127.0.0.1", "-k", str(self.datadir)),
                    *options,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **self._run_as,
            )
        finally:
            log.close()
        wait_for(self.accepting, timeout, 0.05, f"PostgreSQL on port {self.port}")
        return self

    def accepting(self) -> bool:
        """Does the server accept sessions now (``pg_isready``)?"""
        if self.proc is None or self.proc.poll() is not None:
            raise AssertionError(f"postgres exited: {self.log_tail()}")
        ready = subprocess.run(
            [
                *(str(self.bindir / "pg_isready"), "-q", "-h", "127.0.0.1"),
                *("-p", str(self.port), "-U", "postgres", "-d", "postgres"),
            ],
            capture_output=True,
        )
        return ready.returncode == 0

    def stop(self, timeout: float = 20.0) -> None:
        """Fast shutdown (sessions are ended), and wait for the server to exit."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def close(self) -> None:
        self.stop()
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        shutil.rmtree(self.root, ignore_errors=True)
        _live.discard(self)

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> PgCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


@atexit.register
def _close_live() -> None:
    for cluster in list(_live):
        cluster.close()
