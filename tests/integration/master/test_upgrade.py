"""USR2 binary upgrade, then TERM of the old master, under load (issue 3: "USR2
upgrade then TERM of the old master under load: 0 failed requests").

USR2 re-executes a new master that inherits the listening sockets; the old master
moves its pidfile to ``<path>.oldbin`` and the new one claims ``<path>``. The new
master is a child of the old one until the old exits; the test adopts it then (as a
subreaper), so it can stop it by pid and read its exit code, and it checks that no
process of either master is left.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

from support.churn import Churn
from support.load import Load, report
from support.master import (
    Master,
    adopting_orphans,
    assert_group_gone,
    probe_connections,
    reap,
    served_pids,
)
from support.metrics_server import free_port, http_get
from support.process import wait_for
from support.proctree import alive, children

WORKERS = 2
CLIENTS = 32


def read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None


@contextlib.contextmanager
def new_master_killed_on_failure(pidfile: Path, old: int) -> Iterator[None]:
    """If the test fails midway, KILL the master USR2 started (once ours, reap it)."""
    try:
        yield
    except BaseException:
        new = read_pid(pidfile)
        if new is not None and new != old and alive(new):
            os.kill(new, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError, AssertionError):
                reap(new, timeout=5)
        raise


def upgrade(server: Master, pidfile: Path) -> int:
    """USR2; wait for the new master's pidfile and its READY=1; returns its pid."""
    old = server.pid
    server.signal(signal.SIGUSR2)
    new: int = wait_for(
        lambda: (pid := read_pid(pidfile)) != old and pid, 10, 0.02, "the new pidfile"
    )
    assert read_pid(pidfile.with_name(pidfile.name + ".oldbin")) == old
    ready = server.notify.wait_for(
        lambda messages: [m for m in messages if m.sender == new and "READY" in m.fields],
        what="READY=1 from the new master",
    )
    assert ready[0].fields.get("MAINPID") == str(new)
    return new


def test_usr2_then_term_of_the_old_master_under_load(
    master: Callable[..., Master], tmp_path: Path
) -> None:
    pidfile = tmp_path / "covetd.pid"
    server = master({"server": {"workers": WORKERS, "pidfile": str(pidfile)}})
    old = server.pid
    assert read_pid(pidfile) == old
    with adopting_orphans(), new_master_killed_on_failure(pidfile, old):
        with (
            Load(server.port, clients=CLIENTS) as load,
            Churn(server.port, requests_per_connection=10) as churn,
        ):
            load.wait_for_requests(200)
            new = upgrade(server, pidfile)
            new_workers = set(children(new))
            assert len(new_workers) == WORKERS, new_workers

            server.signal(signal.SIGTERM)
            assert server.server.wait(20) == 0, server.log_tail()
            wait_for(
                lambda: new_workers & served_pids(load, churn),
                10,
                0.02,
                "the new master's workers to serve",
            )
            load.wait_for_requests(200)
        report("USR2 then TERM of the old master", load.result, churn.result)
        assert load.result.failed == 0, f"{load.result}\n{server.log_tail()}"
        assert churn.result.failed == 0, f"{churn.result}\n{server.log_tail()}"
        assert read_pid(pidfile) == new
        assert not pidfile.with_name(pidfile.name + ".oldbin").exists()
        probe = probe_connections(server.port, 40)
        assert not probe.failures and set(map(int, probe.pids)) <= new_workers, probe
        assert "graceful timeout" not in server.log(), "a draining worker had to cut requests"

        os.kill(new, signal.SIGTERM)
        assert reap(new) == 0, server.log_tail()
    assert not pidfile.exists()
    assert_group_gone(old)


def test_the_old_master_does_not_tell_systemd_it_stops_after_the_upgrade(
    master: Callable[..., Master], tmp_path: Path
) -> None:
    """Once the new master announced MAINPID=, the old one is not the service's main
    process any more: a STOPPING=1 from it, accepted under NotifyAccess=all (which
    MAINPID= needs, docs/operations.md), would make systemd stop the whole service."""
    pidfile = tmp_path / "covetd.pid"
    server = master({"server": {"workers": WORKERS, "pidfile": str(pidfile)}})
    old = server.pid
    with adopting_orphans(), new_master_killed_on_failure(pidfile, old):
        new = upgrade(server, pidfile)
        server.signal(signal.SIGTERM)
        assert server.server.wait(20) == 0, server.log_tail()
        os.kill(new, signal.SIGTERM)
        assert reap(new) == 0, server.log_tail()
        server.notify.wait_for(
            lambda messages: any(m.sender == new and "STOPPING" in m.fields for m in messages),
            what="STOPPING=1 from the new master",
        )
    from_old = [m.fields for m in server.notify.messages() if m.sender == old]
    assert not any("STOPPING" in fields for fields in from_old), from_old
    assert_group_gone(old)


def test_usr2_with_metrics_on_hands_the_metrics_port_over(
    master: Callable[..., Master], tmp_path: Path
) -> None:
    """The metrics endpoint is the master's: the new master takes the old one's socket
    (binding it again would fail while the old master lives), and it answers there
    once the old master is gone."""
    pidfile = tmp_path / "covetd.pid"
    metrics_port = free_port()
    config = {
        "server": {"workers": WORKERS, "pidfile": str(pidfile)},
        "metrics": {"enabled": True, "bind": f"127.0.0.1:{metrics_port}"},
    }
    server = master(config)
    old = server.pid
    assert http_get(metrics_port, "/healthz").status == 200
    with adopting_orphans(), new_master_killed_on_failure(pidfile, old):
        new = upgrade(server, pidfile)
        server.signal(signal.SIGTERM)
        assert server.server.wait(20) == 0, server.log_tail()
        reply = wait_for(
            lambda: (r := http_get(metrics_port, "/metrics")).status == 200 and r,
            10,
            what="the new master's /metrics",
        )
        workers = scraped_pids(reply.body.decode())
        assert workers and workers <= set(children(new)), (workers, children(new))
        os.kill(new, signal.SIGTERM)
        assert reap(new) == 0, server.log_tail()
    assert_group_gone(old)


def scraped_pids(body: str) -> set[int]:
    """The worker pids of the scrape's process_* series."""
    found = set()
    for line in body.splitlines():
        if line.startswith("process_start_time_seconds{") and 'process="worker-' in line:
            found.add(int(line.split('pid="', 1)[1].split('"', 1)[0]))
    return found
