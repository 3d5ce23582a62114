"""Issue 3: the master as PID 1 of a container (a new PID namespace).

As PID 1 the master inherits every orphan of the namespace and must reap it, or
zombies pile up; and the kernel gives PID 1 no default action for TERM, so only
covetd's own handler stops it. ``unshare --pid --fork --mount-proc`` makes covetd's
master PID 1 of a fresh namespace with its own /proc, which the app inspects.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
from support.process import wait_for
from support.proctree import assert_gone, children, wait_for_children
from support.rawhttp import RawConnection
from support.wrapped import WrappedCovetd

UNSHARE = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"]


def _require_unshare() -> None:
    probe = subprocess.run([*UNSHARE, "true"], capture_output=True, text=True)
    if probe.returncode == 0:
        return
    reason = f"unshare --pid failed: {probe.stderr.strip()}"
    if "permitted" in probe.stderr and os.environ.get("CI") != "true":
        pytest.skip(f"{reason} (needs root or CAP_SYS_ADMIN)")
    pytest.fail(reason)


def _get_json(server: WrappedCovetd, path: str) -> object:
    with RawConnection(server.host, server.port) as conn:
        conn.send(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        response = conn.read_response()
    assert response.status == 200, response
    return json.loads(response.body)


def _namespace_pid(host_pid: int) -> int:
    """The pid ``host_pid`` has inside its own PID namespace (last of NSpid)."""
    for line in Path(f"/proc/{host_pid}/status").read_text().splitlines():
        if line.startswith("NSpid:"):
            return int(line.split()[-1])
    raise AssertionError("no NSpid line")


def test_master_as_pid_1_reaps_orphans_and_stops_on_term() -> None:
    _require_unshare()
    server = WrappedCovetd("master_failures:app", {"server": {"workers": 2}}, prefix=UNSHARE)
    try:
        server.start()
        [init] = wait_for_children(server.proc.pid, 1)  # unshare's child: covetd's master
        assert _namespace_pid(init) == 1
        workers = wait_for_children(init, 2)

        spawned = _get_json(server, "/orphans?n=3&s=1")
        assert isinstance(spawned, dict)
        orphans = set(spawned["pids"])
        assert spawned["parents"] == [1, 1, 1], "the orphans were not re-parented to PID 1"

        seen: list[dict[str, object]] = []

        def reaped() -> bool:
            found = _get_json(server, "/procs")
            assert isinstance(found, list)
            seen[:] = found
            return not orphans & {p["pid"] for p in found}

        try:
            wait_for(reaped, 10.0, what=f"orphans {sorted(orphans)} to exit and be reaped")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; processes in the namespace: {seen}") from None
        left = seen
        assert [p for p in left if p["state"] == "Z"] == [], left
        assert {p["pid"] for p in left if p["ppid"] == 1} == {_namespace_pid(w) for w in workers}

        os.kill(init, signal.SIGTERM)
        assert server.wait(15) == 0, server.log()
        assert "graceful stop" in server.log()
        assert_gone({init, *workers})
    except subprocess.TimeoutExpired:
        pytest.fail(f"PID 1 did not stop on TERM:\n{server.log()}")
    finally:
        for pid in children(server.proc.pid) if server.proc else ():
            with contextlib.suppress(ProcessLookupError):  # the namespace's init; the
                os.kill(pid, signal.SIGKILL)  # kernel then kills everything inside
        server.stop()
