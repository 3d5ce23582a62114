"""Helpers for the master's integration tests (``tests/integration/master/``).

A ``Master`` is a real covetd process on a real TCP port, bound the way production
binds it (one SO_REUSEPORT socket per worker slot, held by the master:
``slots.start_per_slot``), or on a shared ``fd://`` socket; it reports to a
``NotifyRecorder``. Its workers are read from /proc (live children of the master,
``proctree``), fresh-connection probes check that every listening socket is served,
and ``stop`` proves that nothing of its process group was left behind. Every wait
has a deadline; nothing sleeps to synchronise.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import os
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .churn import Churn
from .load import Load
from .notify import NotifyRecorder
from .process import Covetd, wait_for
from .proctree import children
from .slots import get, start_per_slot

# -- processes -------------------------------------------------------------------------


def group(pgid: int) -> set[int]:
    """Members of process group ``pgid``, zombies included: once its leader (the master)
    has exited, a zombie there is a process that outlived the master (and that init,
    in some containers, never reaps)."""
    members = set()
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rpartition(b")")[2].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[2]) == pgid:
            members.add(int(entry))
    return members


PR_SET_CHILD_SUBREAPER = 36


@contextlib.contextmanager
def adopting_orphans() -> Iterator[None]:
    """Make this process the subreaper of its descendants for the block, so that a
    process orphaned there (a master started by USR2, once the old master exits)
    becomes our child: ``reap`` can then wait for it and read its exit code."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    try:
        yield
    finally:
        libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


def reap(pid: int, timeout: float = 20.0) -> int:
    """Wait (with a deadline) for our child ``pid`` to exit; returns its exit code."""

    def exited() -> tuple[int, int] | None:
        done, status = os.waitpid(pid, os.WNOHANG)
        return (done, status) if done else None

    _, status = wait_for(exited, timeout, 0.02, f"process {pid} to exit")
    return os.waitstatus_to_exitcode(status)


# -- sockets and requests --------------------------------------------------------------


@dataclass
class Probe:
    """What ``probe_connections`` saw: serving pids, failures by kind."""

    pids: collections.Counter[str]
    failures: collections.Counter[str]


def probe_connections(port: int, count: int, timeout: float = 2.0, give_up_after: int = 3) -> Probe:
    """``count`` requests, each on a new connection: each new connection lands on one
    of the listening sockets (the kernel picks), so an unserved socket shows up as a
    timeout here instead of hiding behind keep-alive connections. Stops early after
    ``give_up_after`` failures (the verdict is in; each may have cost ``timeout``)."""
    result = Probe(collections.Counter(), collections.Counter())
    for _ in range(count):
        if result.failures.total() >= give_up_after:
            break
        try:
            response = get(port, "/pid", timeout)
        except TimeoutError:
            result.failures["timeout"] += 1
        except OSError as exc:
            result.failures[type(exc).__name__] += 1
        else:
            if response.status == 200:
                result.pids[response.header("x-worker-pid") or "?"] += 1
            else:
                result.failures[f"status:{response.status}"] += 1
    return result


def served_pids(*loads: Load | Churn) -> set[int]:
    """The worker pids that answered these clients so far (each copy taken in one C
    call, so the client threads may go on counting)."""
    return {int(pid) for load in loads for pid in dict(load.result.pids)}


# -- the master ------------------------------------------------------------------------


class Master:
    """A covetd master under test, with its sd_notify listener."""

    def __init__(self, server: Covetd, notify: NotifyRecorder) -> None:
        self.server = server
        self.notify = notify

    @property
    def pid(self) -> int:
        assert self.server.proc is not None
        return self.server.proc.pid

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def config_path(self) -> Path:
        return self.server.config_path

    def log(self) -> str:
        return self.server.log()

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def signal(self, signum: int) -> None:
        self.server.signal(signum)

    def workers(self) -> set[int]:
        return set(children(self.pid))

    def wait_workers(self, count: int, timeout: float = 10.0) -> set[int]:
        """Wait until exactly ``count`` live workers remain; returns their pids."""
        try:
            pids: set[int] = wait_for(
                lambda: (found := self.workers()) and len(found) == count and found,
                timeout,
                0.02,
                f"{count} live workers",
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {self.workers()}\n{self.log_tail()}") from None
        return pids

    def wait_log(self, text: str, timeout: float = 10.0) -> None:
        try:
            wait_for(lambda: text in self.log(), timeout, 0.02, f"{text!r} in the log")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.log_tail()}") from None

    def wait_ready(self, generation: int, timeout: float = 10.0) -> None:
        """Wait for READY=1 from this master with every worker of ``generation`` ready."""

        def ready(messages: list[Any]) -> bool:
            for message in messages:
                status = message.status()
                if (
                    message.sender == self.pid
                    and "READY" in message.fields
                    and status
                    and status[2] == generation
                    and status[0] == status[1]
                ):
                    return True
            return False

        self.notify.wait_for(ready, timeout, f"READY=1 for generation {generation}")

    def config(self) -> dict[str, Any]:
        loaded: dict[str, Any] = yaml.safe_load(self.config_path.read_text())
        return loaded

    def write_config(self, change: Callable[[dict[str, Any]], None]) -> None:
        """Apply ``change`` to the config file (read again by the master on HUP)."""
        settings = self.config()
        change(settings)
        self.config_path.write_text(yaml.safe_dump(settings))

    def stop(self, timeout: float = 20.0) -> None:
        """TERM; the master must exit 0 and leave no process of its group behind."""
        self.signal(signal.SIGTERM)
        code = self.server.wait(timeout)
        assert code == 0, f"master exited with {code}\n{self.log_tail()}"
        assert_group_gone(self.pid)


def assert_group_gone(pgid: int, timeout: float = 5.0) -> None:
    """Nothing of process group ``pgid`` lives on (the master's own session)."""
    try:
        wait_for(lambda: not group(pgid), timeout, 0.02, f"process group {pgid} to be empty")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: left behind {sorted(group(pgid))}") from None


def start_master(
    covetd: Callable[..., Covetd],
    notify: NotifyRecorder,
    config: dict[str, Any] | None = None,
    *,
    app: str = "master_probe:app",
    shared: bool = False,
    **kwargs: Any,
) -> Master:
    """Start a master and wait until every worker of generation 1 reported ready.

    It binds a reserved TCP port, one SO_REUSEPORT socket per worker slot as in
    production (``slots.start_per_slot``), or with ``shared`` one ``fd://`` socket that
    every worker accepts on. ``config`` sections are merged over the defaults here
    (graceful_timeout 5 s).
    """
    settings: dict[str, Any] = {"server": {"graceful_timeout": 5}}
    for key, value in (config or {}).items():
        settings[key] = {**settings.get(key, {}), **value} if isinstance(value, dict) else value
    env = {**notify.env, "PYTHONDONTWRITEBYTECODE": "1", **kwargs.pop("env", {})}
    if shared:
        server = covetd(app, settings, env=env, **kwargs)
    else:
        server = start_per_slot(covetd, settings, app, env=env, **kwargs)
    master = Master(server, notify)
    master.wait_ready(generation=1)
    return master


def write_module(directory: Path, name: str, source: str) -> None:
    """Write a module atomically (a worker importing it never sees half a file)."""
    temporary = directory / f".{name}.py.tmp"
    temporary.write_text(source)
    os.replace(temporary, directory / f"{name}.py")
