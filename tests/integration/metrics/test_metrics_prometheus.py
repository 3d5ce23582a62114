"""A real Prometheus scrapes the master's ``/metrics`` (issue 7): deploycheck's
``prom-scrape`` starts a throwaway Prometheus (Debian's ``prometheus`` package) with
one scrape job on our endpoint, waits for scrapes, and reports the target's health,
the metric names ingested, PromQL query results and promtool's verdict.

Prometheus asks for OpenMetrics first, so this is also the OpenMetrics exposition
read by the server it is for. Without Prometheus the test skips, except under
CI=true, where it fails with the reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from support.metrics_server import (
    ITEM_ROUTE,
    REQUESTS,
    MetricsServer,
    fetch_all,
    fetch_statuses,
    require_tool,
    unavailable,
)
from support.process import REPO

# The shared deploycheck tools: $DEPLOYCHECK, as for deploy/verify/*.sh, else ../shared.
DEPLOYCHECK = Path(os.environ.get("DEPLOYCHECK", REPO.parent / "shared" / "tools" / "deploycheck"))
PROM_SCRAPE = DEPLOYCHECK / "prom-scrape"
SENT = 30
STANDARD = [
    "covetd_http_requests_total",
    "covetd_http_request_duration_seconds_bucket",
    "covetd_http_request_duration_seconds_count",
    "covetd_http_request_duration_seconds_sum",
    "covetd_http_request_size_bytes_count",
    "covetd_http_response_size_bytes_sum",
    "covetd_http_requests_in_flight",
    "covetd_http_connections_active",
    "covetd_workers",
    "covetd_worker_restarts_total",
    "covetd_event_loop_lag_seconds",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_start_time_seconds",
    "process_open_fds",
    "metricsapp_items_covetd_total",
]
QUERIES = {
    "items": f'sum(covetd_http_requests_total{{route="{ITEM_ROUTE}"}})',
    "unmatched": 'sum(covetd_http_requests_total{route="<unmatched>",status="404"})',
    "workers": "covetd_workers",
    "lag": "count(covetd_event_loop_lag_seconds)",
    "processes": "count(process_cpu_seconds_total)",
}


def prom_scrape(url: str) -> tuple[int, dict[str, object]]:
    """Run prom-scrape on ``url``; its exit status and its JSON report."""
    if not PROM_SCRAPE.exists():
        unavailable(f"{PROM_SCRAPE} is missing (shared/ beside the repository, or set DEPLOYCHECK)")
    require_tool("prometheus", "apt-get install -y prometheus, or deploycheck's setup")
    command = [sys.executable, str(PROM_SCRAPE), url, "--json", "--scrapes", "2"]
    command += ["--interval", "0.5", "--timeout", "40"]
    for name in STANDARD:
        command += ["--expect", name]
    for query in QUERIES.values():
        command += ["--query", query]
    done = subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)
    try:
        report: dict[str, object] = json.loads(done.stdout)
    except ValueError:
        raise AssertionError(f"prom-scrape said:\n{done.stdout}\n{done.stderr}") from None
    return done.returncode, report


def test_a_real_prometheus_scrapes_the_standard_series(
    metrics_server: Callable[..., MetricsServer],
) -> None:
    server = metrics_server()
    served = fetch_all(server.port, [f"/items/{i}" for i in range(SENT)])
    assert len(served) == 2, served
    assert fetch_statuses(server.port, ["/no/such/path"]) == {404: 1}
    server.wait_value(lambda s: s.total(REQUESTS, route=ITEM_ROUTE), SENT, "requests counted")

    status, report = prom_scrape(f"http://127.0.0.1:{server.metrics_port}/metrics")
    shown = json.dumps(report, indent=1)
    assert "error" not in report, shown
    assert status == 0, shown
    target = report["target"]
    assert isinstance(target, dict)
    assert (target["health"], target["lastError"]) == ("up", ""), shown
    assert report["missing"] == [], shown
    names = report["metric_names"]
    assert isinstance(names, list)
    assert set(STANDARD) <= set(names), shown
    assert report["promtool"] == {"rc": 0, "output": ""}, shown
    results = report["queries"]
    assert isinstance(results, dict)

    def value(key: str) -> float:
        rows = results[QUERIES[key]]
        assert len(rows) == 1, (key, rows)
        return float(rows[0]["value"])

    assert value("items") == SENT
    assert value("unmatched") == 1
    assert value("workers") == 2
    assert value("lag") == 2  # one per worker
    assert value("processes") == 3  # the master and two workers
