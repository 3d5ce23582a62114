"""``/healthz`` and ``/readyz`` on the master's metrics port (DESIGN.md §6), and the
master's ownership of the metrics directory.

``/healthz`` is 200 while the master runs and at least one worker serves; ``/readyz``
is 200 only when every worker is ready: 503 while workers start (the test app's
startup waits for files the test creates) and while the master stops (the request
it waits for shows in the in-flight gauge). The readiness of database pools is the
database suite's.
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Callable
from pathlib import Path

from support.metrics_server import ITEM_ROUTE, REQUESTS, MetricsServer, Reply, fetch_all
from support.process import wait_for
from support.proctree import assert_gone
from support.rawhttp import RawConnection

Start = Callable[..., MetricsServer]


def wait_reply(server: MetricsServer, path: str, status: int, timeout: float = 10.0) -> Reply:
    """Until ``path`` on the metrics port answers ``status``; that reply."""
    seen: list[Reply | None] = []

    def answered() -> Reply | None:
        seen.append(server.answers(path))
        return seen[-1] if seen[-1] is not None and seen[-1].status == status else None

    try:
        found: Reply = wait_for(answered, timeout, 0.02, f"{path} to answer {status}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last {seen[-1:]}\n{server.log_tail()}") from None
    return found


def test_readyz_is_503_until_every_worker_started(metrics_server: Start, tmp_path: Path) -> None:
    server = metrics_server(env={"METRICS_APP_GATE": str(tmp_path)}, wait=False)
    # No worker can be ready yet: both wait in their startup.
    starting = wait_for(lambda: server.answers("/readyz"), 10, 0.02, "the metrics endpoint")
    assert (starting.status, starting.body) == (503, b"not ready: starting\n")
    assert server.endpoint("/healthz") == Reply(
        503, "text/plain; charset=utf-8", b"no worker is serving\n"
    )

    (tmp_path / "one").touch()  # one worker finishes starting, the other still waits
    health = wait_reply(server, "/healthz", 200)
    assert health.body == b"ok: 1 worker(s) serving\n"
    readiness = server.endpoint("/readyz")
    assert (readiness.status, readiness.body) == (503, b"not ready: starting\n")
    assert server.scrape().total("covetd_workers") == 1

    (tmp_path / "all").touch()
    assert wait_reply(server, "/readyz", 200).body == b"ready\n"
    assert server.endpoint("/healthz").body == b"ok: 2 worker(s) serving\n"
    assert server.scrape().total("covetd_workers") == 2


def test_readyz_is_503_while_the_master_stops(metrics_server: Start, tmp_path: Path) -> None:
    for name in ("one", "all"):
        (tmp_path / name).touch()
    server = metrics_server(env={"METRICS_APP_GATE": str(tmp_path)})
    assert server.endpoint("/healthz").status == 200
    workers = server.workers()
    with RawConnection("127.0.0.1", server.port) as held:
        held.send(b"GET /hold HTTP/1.1\r\nHost: t\r\n\r\n")
        wait_for(lambda: (tmp_path / "held").exists(), 10, 0.01, "the request to be held")
        # Gauges are sampled once a second in each worker, summed over the workers.
        scrape = server.wait_value(
            lambda s: s.total("covetd_http_requests_in_flight"), 1, "the in-flight gauge"
        )
        assert scrape.total("covetd_http_connections_active") >= 1
        server.server.signal(signal.SIGTERM)  # graceful: the held request may finish
        stopping = wait_reply(server, "/readyz", 503)
        assert stopping.body == b"not ready: stopping\n"
        assert server.endpoint("/healthz").status == 503  # no worker takes new requests
        (tmp_path / "release").touch()
        response = held.read_response()
    assert (response.status, response.body) == (200, b"released")
    assert server.server.wait(15) == 0, server.log_tail()
    assert_gone(workers)


def test_healthz_stays_200_while_one_worker_is_killed(metrics_server: Start) -> None:
    server = metrics_server()
    served = fetch_all(server.port, [f"/items/{i}" for i in range(40)])
    assert len(served) == 2, served
    victim = int(next(iter(served)))
    os.kill(victim, signal.SIGKILL)

    def replaced() -> bool:
        health = server.endpoint("/healthz")
        assert health.status == 200, health  # the other worker serves throughout
        workers = server.workers()
        return victim not in workers and len(workers) == 2

    wait_for(replaced, 10, 0.02, "the killed worker to be replaced")
    server.wait_ready()


def own_directory(worker: int) -> Path:
    """The metrics directory a worker writes to (its cells file is mapped in memory)."""
    maps = Path(f"/proc/{worker}/maps").read_text()
    (path,) = set(re.findall(rf"(/\S+)/cells_{worker}\.bin", maps))
    return Path(path)


def test_the_master_owns_a_private_metrics_directory(metrics_server: Start) -> None:
    server = metrics_server()
    fetch_all(server.port, ["/items/1", "/hello"])
    workers = server.workers()
    directories = {own_directory(pid) for pid in workers}
    assert len(directories) == 1, directories
    (directory,) = directories
    assert (directory.stat().st_mode & 0o777) == 0o700, oct(directory.stat().st_mode)
    server.server.signal(signal.SIGTERM)
    assert server.server.wait(15) == 0, server.log_tail()
    assert_gone(workers)
    assert not directory.exists(), f"{directory} left behind: {list(directory.iterdir())}"


def test_a_configured_directory_is_cleared_at_start(metrics_server: Start, tmp_path: Path) -> None:
    # What a master killed with kill -9 would leave: an earlier run's files.
    stale = ["cells_999999.bin", "cells_999999.keys", "counter_999999.db", "counter_aggregate.db"]
    for name in stale:
        (tmp_path / name).write_bytes(b"\x00" * 64)
    (tmp_path / "keep.txt").write_text("not a metrics file")
    server = metrics_server(multiproc_dir=tmp_path)
    present = {path.name for path in tmp_path.iterdir()}
    assert not present & set(stale), present
    assert "keep.txt" in present
    scrape = server.scrape()
    assert scrape.total(REQUESTS, route=ITEM_ROUTE) == 0
    assert scrape.total("metricsapp_items_direct_total") == 0
