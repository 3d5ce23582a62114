"""A worker killed with ``kill -9`` loses none of the requests it completed (issue 7).

Its counters live in shared memory (covetd's cells, the app's prometheus-client
files): the master folds them into its aggregate when it reaps the worker, deletes
the files, and counts the restart as a crash. A worker caught (or killed) while
prometheus-client creates its file leaves it empty for a moment (or for good): the
scrape must still answer, with everyone else's metrics.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

from support.metrics_server import (
    DEFAULT_BOUNDS,
    ITEM_ROUTE,
    REQUESTS,
    RESTARTS,
    MetricsServer,
    Scrape,
    check_histograms,
    fetch_all,
    owners,
)
from support.process import wait_for

SENT, MORE = 200, 50

Start = Callable[..., MetricsServer]


def items(scrape: Scrape) -> float:
    return scrape.total(REQUESTS, route=ITEM_ROUTE)


def test_kill_9_keeps_the_killed_workers_counts(metrics_server: Start, tmp_path: Path) -> None:
    server = metrics_server(multiproc_dir=tmp_path)
    served = fetch_all(server.port, [f"/items/{i}" for i in range(SENT)])  # all answered
    assert len(served) == 2, served
    server.wait_value(items, SENT, "requests counted")
    victim, victim_served = max(served.items(), key=lambda item: item[1])
    assert victim_served > 0
    assert victim in owners(tmp_path)

    os.kill(int(victim), signal.SIGKILL)
    server.wait_value(lambda s: s.total(RESTARTS, reason="crash"), 1, "the crash counted")
    wait_for(
        lambda: victim not in owners(tmp_path),
        10,
        0.02,
        f"worker {victim}'s files to be folded away",
    )
    scrape = server.scrape()
    assert items(scrape) == SENT, f"worker {victim} served {victim_served}"
    assert scrape.total("metricsapp_items_direct_total") == SENT
    assert scrape.total("metricsapp_items_covetd_total") == SENT
    check_histograms(scrape, DEFAULT_BOUNDS)

    server.wait_ready()  # its replacement serves, and counts on top
    fetch_all(server.port, [f"/items/{i}" for i in range(MORE)])
    scrape = server.wait_value(items, SENT + MORE, "requests after the respawn")
    assert scrape.total("metricsapp_items_covetd_total") == SENT + MORE
    assert scrape.total(RESTARTS) == 1


def test_an_empty_app_metrics_file_does_not_break_the_scrape(
    metrics_server: Start, tmp_path: Path
) -> None:
    server = metrics_server(multiproc_dir=tmp_path)
    fetch_all(server.port, [f"/items/{i}" for i in range(SENT)])
    server.wait_value(items, SENT, "requests counted")
    # prometheus-client creates a worker's file, then sizes it: a scrape in between
    # (or after the worker died in between) finds it empty.
    (tmp_path / "counter_4194000.db").touch()
    reply = server.endpoint("/metrics")
    assert reply.status == 200, (reply, server.log_tail())
    scrape = server.scrape()
    assert items(scrape) == SENT
    assert scrape.total("metricsapp_items_direct_total") == SENT
