"""Recycling under load (issue 3: "max_requests recycling under load: 0 failed
requests", and the ``max_rss`` memory cap).

A worker that served ``max_requests`` (plus jitter), or whose resident memory went
over ``max_rss``, is replaced readiness-gated: its replacement starts first, and it
drains only once the replacement is ready. Every response names its worker
(``x-worker-pid``), so the tests see replacements happen while no request fails.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from support.churn import Churn
from support.load import Load, report
from support.master import Master, served_pids
from support.process import wait_for
from support.slots import get

WORKERS = 2
CLIENTS = 32
RECYCLED_AT_LEAST = 6  # replacements seen before the load stops
CAP_MIB = 160  # max_rss; a worker of the probe app starts at ~25 MiB
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mib(pid: int) -> float:
    resident_pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return resident_pages * PAGE / 2**20


def clean_exits(log: str, reason: str = "max_requests") -> set[int]:
    """Workers the master saw exit with code 0 after retiring them for ``reason``."""
    return set(map(int, re.findall(rf"worker (\d+) exited \({reason}, code 0\)", log)))


def test_max_requests_recycles_workers_under_load_without_failing_a_request(
    master: Callable[..., Master],
) -> None:
    server = master(
        {
            "server": {
                "workers": WORKERS,
                "max_requests": 50,
                "max_requests_jitter": 10,
                "worker_timeout": 5,  # a heartbeat (which carries the count) every second
            }
        }
    )
    first = server.workers()
    with (
        Load(server.port, clients=CLIENTS) as load,
        Churn(server.port, requests_per_connection=10) as churn,
    ):
        wait_for(
            lambda: len(served_pids(load, churn)) >= WORKERS + RECYCLED_AT_LEAST,
            20,
            0.05,
            f"{RECYCLED_AT_LEAST} recycled workers to have served",
        )
    report("max_requests recycling", load.result, churn.result)
    assert load.result.failed == 0, f"{load.result}\n{server.log_tail()}"
    assert churn.result.failed == 0, f"{churn.result}\n{server.log_tail()}"
    survivors = server.wait_workers(WORKERS)
    recycled = served_pids(load, churn) - survivors
    assert first <= recycled, (first, recycled)
    wait_for(
        lambda: recycled <= clean_exits(server.log()),
        5,
        0.02,
        f"the master to log clean exits of {recycled}",
    )
    log = server.log()
    assert all(f"worker {pid}: max_requests reached" in log for pid in recycled), log
    assert "graceful timeout" not in log, "a draining worker had to cut requests"
    server.stop()


def test_max_rss_replaces_the_worker_over_the_cap_without_failing_a_request(
    master: Callable[..., Master],
) -> None:
    server = master({"server": {"workers": WORKERS, "max_rss": f"{CAP_MIB}MiB"}})
    first = server.workers()
    assert all(rss_mib(pid) < CAP_MIB / 2 for pid in first), "workers start too big"
    with (
        Load(server.port, clients=CLIENTS) as load,
        Churn(server.port, requests_per_connection=10) as churn,
    ):
        load.wait_for_requests(200)
        hog = int(get(server.port, f"/alloc?mb={CAP_MIB + 32}").body)
        assert hog in first
        server.wait_log(f"worker {hog}: max_rss reached")
        wait_for(lambda: hog not in server.workers(), 10, 0.02, f"worker {hog} to exit")
        workers = server.wait_workers(WORKERS)
        assert first - {hog} <= workers, "the worker under the cap was replaced too"
        (replacement,) = workers - first
        wait_for(
            lambda: replacement in served_pids(load, churn),
            10,
            0.02,
            f"replacement {replacement} to serve",
        )
        load.wait_for_requests(200)
    report("max_rss recycling", load.result, churn.result)
    assert load.result.failed == 0, f"{load.result}\n{server.log_tail()}"
    assert churn.result.failed == 0, f"{churn.result}\n{server.log_tail()}"
    server.wait_log(f"worker {hog} exited (max_rss, code 0)")
    assert server.log().count("max_rss reached") == 1, "only the worker over the cap"
    server.stop()
