"""Counts stay exact while ``max_requests`` recycles 20+ workers, and the metrics
directory does not fill up (issue 7).

One scenario for the module: two workers with ``max_requests: 10`` under keep-alive
load until the master reports at least 20 ``max_requests`` restarts; then every
request answered is counted exactly once, by covetd and by the app's own counters
(folded into ``*_aggregate.db`` when their worker exits), and the directory holds the
files of the live workers plus the aggregates, nothing of a dead worker.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support.load import Load, LoadResult
from support.metrics_server import (
    DEFAULT_BOUNDS,
    ITEM_ROUTE,
    REQUESTS,
    RESTARTS,
    MetricsServer,
    Reply,
    Scrape,
    check_histograms,
    owners,
    start_metrics_server,
)
from support.process import wait_for

WORKERS = 2
MAX_REQUESTS = 10
RECYCLES = 20
CLIENTS = 4
PAUSE = 0.002  # per client, between requests: load enough, CPU to spare for the forks
FILES_PER_WORKER = 3  # cells_<pid>.bin, cells_<pid>.keys, counter_<pid>.db (the app's)


@dataclass
class Recycled:
    server: MetricsServer
    directory: Path
    load: LoadResult
    first: set[int]
    scrapes: int  # of /metrics during the recycling
    failed_scrapes: list[Reply]
    duplicates: list[Any]  # series exposed twice in one of those scrapes


def recycles(scrape: Scrape) -> float:
    return scrape.total(RESTARTS, reason="max_requests")


@pytest.fixture(scope="module")
def recycled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recycled]:
    directory = tmp_path_factory.mktemp("multiproc")
    server = start_metrics_server(
        # worker_timeout 2: a heartbeat (which carries the served count) every 0.4 s
        {"server": {"max_requests": MAX_REQUESTS, "worker_timeout": 2}},
        workers=WORKERS,
        multiproc_dir=directory,
    )
    try:
        first = server.workers()
        replies: list[Reply] = []
        duplicates: list[Any] = []

        def recycled_enough() -> bool:
            replies.append(server.endpoint("/metrics"))
            if replies[-1].status != 200:
                return False
            scrape = Scrape(replies[-1].body.decode(), openmetrics=False)
            duplicates.extend(scrape.duplicates)
            return recycles(scrape) >= RECYCLES

        with Load(server.port, clients=CLIENTS, path="/items/7", pause=PAUSE) as load:
            wait_for(recycled_enough, 40, 0.02, f"{RECYCLES} max_requests restarts")
        settle(server, directory, load.result)
        failed = [reply for reply in replies if reply.status != 200]
        yield Recycled(server, directory, load.result, first, len(replies), failed, duplicates)
    finally:
        server.stop()


def settle(server: MetricsServer, directory: Path, load: LoadResult) -> None:
    """Until the recycling is over. The load was the workers' only client and counted
    what each served (``x-worker-pid``): a live worker that served ``max_requests``
    is still to be replaced; once none is, and every replaced worker exited and was
    reaped (its files folded away), nothing changes any more."""

    def settled() -> bool:
        log = server.log()
        asked = len(re.findall(r"worker \d+: max_requests reached", log))
        exited = len(re.findall(r"worker \d+ exited \(max_requests, code 0\)", log))
        live = server.workers()
        return (
            len(live) == WORKERS
            and all(load.pids.get(str(pid), 0) < MAX_REQUESTS for pid in live)
            and asked == exited
            and set(owners(directory)) <= {str(pid) for pid in live} | {"aggregate"}
        )

    try:
        wait_for(settled, 20, 0.05, "the recycling to settle")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {owners(directory)}\n{server.log_tail()}") from None


def test_load_recycled_twenty_workers_without_a_failure(recycled: Recycled) -> None:
    assert recycled.load.failed == 0, recycled.load
    served = {int(pid) for pid in recycled.load.pids}
    assert len(served) >= RECYCLES, f"only {len(served)} workers served"
    assert recycled.first <= served
    assert not recycled.first & recycled.server.workers(), "the first workers were recycled"


def test_metrics_answers_throughout_the_recycling(recycled: Recycled) -> None:
    assert recycled.scrapes > 0
    log = recycled.server.log()
    where = log.find("metrics endpoint failed")
    assert not recycled.failed_scrapes, (
        f"{len(recycled.failed_scrapes)} of {recycled.scrapes} scrapes failed, "
        f"e.g. {recycled.failed_scrapes[0]}\n{log[where : where + 2500]}"
    )


def test_no_series_is_exposed_twice_during_the_recycling(recycled: Recycled) -> None:
    # A replacement and the worker it replaces overlap: each is its own series.
    assert recycled.scrapes > 0
    assert not recycled.duplicates, (
        f"{len(recycled.duplicates)} duplicate series in {recycled.scrapes} scrapes, e.g. "
        f"{sorted(set(map(str, recycled.duplicates)))[:4]}"
    )


def test_worker_restarts_counts_every_recycle(recycled: Recycled) -> None:
    scrape = recycled.server.scrape()
    exits = re.findall(r"worker \d+ exited \(max_requests, code 0\)", recycled.server.log())
    assert recycles(scrape) == len(exits) >= RECYCLES
    assert scrape.total(RESTARTS, reason="crash") == 0
    assert scrape.total("covetd_workers") == WORKERS


def test_requests_total_is_exact_after_recycling(recycled: Recycled) -> None:
    answered = recycled.load.ok
    scrape = recycled.server.wait_value(
        lambda s: s.total(REQUESTS, route=ITEM_ROUTE), answered, "requests counted"
    )
    assert scrape.total(REQUESTS, route=ITEM_ROUTE, status="200") == answered
    check_histograms(scrape, DEFAULT_BOUNDS)


def test_app_counters_are_exact_after_recycling(recycled: Recycled) -> None:
    answered = recycled.load.ok
    scrape = recycled.server.wait_value(
        lambda s: s.total("metricsapp_items_direct_total"), answered, "prometheus_client counter"
    )
    assert scrape.total("metricsapp_items_direct_total", kind="odd") == answered  # /items/7
    assert scrape.total("metricsapp_items_covetd_total") == answered
    assert (recycled.directory / "counter_aggregate.db").exists()


def test_the_metrics_directory_holds_only_live_workers_files(recycled: Recycled) -> None:
    live = recycled.server.workers()
    found = owners(recycled.directory)
    assert set(found) <= {str(pid) for pid in live} | {"aggregate"}, found
    files = sum(len(names) for names in found.values())
    assert files <= FILES_PER_WORKER * len(live) + len(found.get("aggregate", [])), found
    assert len(found.get("aggregate", [])) <= 3, found  # counter, histogram, summary
    for pid in live:
        expected = [f"cells_{pid}.bin", f"cells_{pid}.keys", f"counter_{pid}.db"]
        assert sorted(found[str(pid)]) == expected, found
