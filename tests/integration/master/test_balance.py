"""Load balance between workers (issue 3: "Load is balanced: with 2+ workers, each
serves a fair share (report the spread)").

New connections are spread by the kernel: over the per-slot SO_REUSEPORT sockets
(hash of the connection's addresses), or, on one shared socket (``fd://``, systemd
activation), to whichever worker accepts first. Keep-alive clients stay with the
worker that accepted them, so that spread is checked too. The spread is printed
(``pytest -s``) and named in every assertion message.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from support.load import Load
from support.master import Master, probe_connections

# Each worker serves at least this fraction of an even share (20% of all with 2).
FAIR = 0.4
THREADS, CONNECTIONS = 8, 100  # 800 new connections
KEEPALIVE_CLIENTS, KEEPALIVE_REQUESTS = 64, 3000


def spread(counts: collections.Counter[str], workers: set[int]) -> str:
    total = sum(counts.values())
    shares = {pid: counts.get(str(pid), 0) / total for pid in sorted(workers)}
    return ", ".join(f"{pid}: {share:.1%}" for pid, share in shares.items()) + f" of {total}"


def assert_fair(counts: collections.Counter[str], workers: set[int], what: str) -> None:
    report = f"{what} spread over {len(workers)} workers: {spread(counts, workers)}"
    print(report)
    assert set(map(int, counts)) <= workers, report
    floor = FAIR / len(workers) * sum(counts.values())
    assert all(counts.get(str(pid), 0) >= floor for pid in workers), report


@pytest.mark.parametrize("workers", [2, 3])
@pytest.mark.parametrize("shared", [False, True], ids=["per-slot", "shared"])
def test_new_connections_are_spread_fairly(
    master: Callable[..., Master], workers: int, shared: bool
) -> None:
    server = master({"server": {"workers": workers}}, shared=shared)
    pids = server.workers()
    with ThreadPoolExecutor(THREADS) as pool:
        probes = list(
            pool.map(lambda _: probe_connections(server.port, CONNECTIONS), range(THREADS))
        )
    counts = sum((probe.pids for probe in probes), collections.Counter[str]())
    failures = sum((probe.failures for probe in probes), collections.Counter[str]())
    assert not failures, failures
    assert_fair(counts, pids, "new connections")
    server.stop()


@pytest.mark.parametrize("shared", [False, True], ids=["per-slot", "shared"])
def test_keep_alive_clients_are_spread_fairly(master: Callable[..., Master], shared: bool) -> None:
    server = master({"server": {"workers": 2}}, shared=shared)
    pids = server.workers()
    with Load(server.port, clients=KEEPALIVE_CLIENTS) as load:
        load.wait_for_requests(KEEPALIVE_REQUESTS)
    assert load.result.failed == 0, load.result
    assert_fair(load.result.pids, pids, "keep-alive requests")
    server.stop()
