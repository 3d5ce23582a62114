"""Issue 3: ``server.bind: ["unix:/path"]`` with ``unix_socket_mode`` and ``_owner``.

The master binds the socket file before forking, with the configured mode and owner;
every worker accepts on it. A socket file left by an earlier run is replaced, one
that another process listens on is refused with a clear error.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.process import wait_for
from support.proctree import assert_gone, wait_for_children
from support.unixhttp import UnixConnection, unix_get

APP = "master_failures:app"


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="cvu-"))  # short: AF_UNIX paths are limited
    yield directory
    shutil.rmtree(directory)


def _start(covetd, path: Path, **server: object):
    config = {"server": {"workers": 2, "bind": [f"unix:{path}"], **server}}
    return covetd(APP, config, bind=False, wait=False)


def _serving(server, path: Path) -> None:
    def answered() -> bool:
        if server.proc.poll() is not None:
            raise AssertionError(f"covetd exited with {server.proc.returncode}:\n{server.log()}")
        try:
            return unix_get(str(path)).status == 200
        except OSError:
            return False

    wait_for(answered, 15.0, 0.05, f"covetd to answer on {path}")


def test_serves_over_a_unix_socket_with_its_mode_and_owner(covetd, socket_dir) -> None:
    path = socket_dir / "s.sock"
    nobody = pwd.getpwnam("nobody")
    server = _start(covetd, path, unix_socket_mode="0640", unix_socket_owner="nobody")
    _serving(server, path)
    info = path.stat()
    assert stat.S_ISSOCK(info.st_mode)
    assert oct(stat.S_IMODE(info.st_mode)) == oct(0o640)
    assert info.st_uid == nobody.pw_uid
    with UnixConnection(str(path)) as conn:
        for _ in range(3):
            conn.send(b"GET / HTTP/1.1\r\nHost: unix\r\n\r\n")
            response = conn.read_response()
            assert (response.status, response.body) == (200, b"hello")
    workers = wait_for_children(server.proc.pid, 2)
    assert server.stop() == 0
    assert_gone(workers)


def test_replaces_a_stale_socket_file(covetd, socket_dir) -> None:
    path = socket_dir / "s.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # the file stays; nobody listens on it
    server = _start(covetd, path)
    _serving(server, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o660  # the default mode
    assert server.stop() == 0


def test_refuses_a_socket_another_process_listens_on(covetd, socket_dir) -> None:
    path = socket_dir / "s.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as other:
        other.bind(str(path))
        other.listen(8)
        server = _start(covetd, path)
        try:
            code = server.wait(5.0)
        except subprocess.TimeoutExpired:
            pytest.fail(f"covetd took over a socket in use:\n{server.log()}")
        assert code != 0
        assert str(path) in server.log() and "another process is listening" in server.log()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.connect(str(path))  # still the other process's socket
        assert os.path.exists(path)
