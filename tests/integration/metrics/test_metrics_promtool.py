"""``/metrics`` passes ``promtool check metrics``, in the text format and in OpenMetrics
(issue 7). promtool comes with Debian's ``prometheus`` package (deploycheck's
``setup`` installs it); without it these tests skip, except under CI=true.

promtool's linter reads the Prometheus text format only. Fed OpenMetrics, it sees a
counter family declared without its ``_total`` suffix (as OpenMetrics requires:
``# TYPE covetd_http_requests counter`` over ``covetd_http_requests_total`` samples)
and reports "<name>_total no help text" for each such counter, which is the one
finding allowed there. The OpenMetrics body is also parsed by prometheus-client's
strict OpenMetrics parser here, and by a real Prometheus in ``test_metrics_prometheus``
(Prometheus asks for OpenMetrics first).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest
from support.metrics_server import (
    ITEM_ROUTE,
    OPENMETRICS,
    REQUESTS,
    MetricsServer,
    Scrape,
    fetch_all,
    fetch_statuses,
    require_tool,
)

INSTALL = "apt-get install -y prometheus, or ../shared/tools/deploycheck/setup"


@pytest.fixture
def server(metrics_server: Callable[..., MetricsServer]) -> MetricsServer:
    """Two workers that served 200s on two routes, a 404 and a 500 (every kind of
    series: counters, histograms, summaries, gauges, app counters, process_*)."""
    server = metrics_server()
    fetch_all(server.port, [f"/items/{i}" for i in range(20)] + ["/hello"] * 5)
    assert fetch_statuses(server.port, ["/nope", "/boom"]) == {404: 1, 500: 1}
    server.wait_value(lambda s: s.total(REQUESTS, route=ITEM_ROUTE), 20, "requests counted")
    server.wait_value(lambda s: s.total(REQUESTS, status="500"), 1, "the 500 counted")
    return server


def promtool(body: bytes) -> tuple[int, list[str]]:
    """``promtool check metrics`` over ``body``: its exit status and its findings."""
    tool = require_tool("promtool", INSTALL)
    done = subprocess.run(
        [tool, "check", "metrics"], input=body, capture_output=True, timeout=30, check=False
    )
    output = (done.stdout + done.stderr).decode()
    return done.returncode, [line for line in output.splitlines() if line.strip()]


def test_the_text_format_passes_promtool(server: MetricsServer) -> None:
    reply = server.endpoint("/metrics")
    assert reply.status == 200
    assert reply.content_type.startswith("text/plain; version="), reply.content_type
    status, findings = promtool(reply.body)
    assert (status, findings) == (0, []), reply.body.decode()
    scrape = Scrape(reply.body.decode(), openmetrics=False)
    assert not scrape.duplicates
    assert scrape.total(REQUESTS, status="404") >= 1
    assert scrape.select("process_cpu_seconds_total", process="master")


def test_openmetrics_passes_promtool(server: MetricsServer) -> None:
    reply = server.endpoint("/metrics", OPENMETRICS)
    assert reply.status == 200
    assert reply.content_type == "application/openmetrics-text; version=1.0.0; charset=utf-8"
    assert reply.body.endswith(b"# EOF\n")
    scrape = Scrape(reply.body.decode(), openmetrics=True)  # strict: fails on bad input
    assert not scrape.duplicates
    text = server.scrape()
    assert scrape.series() == text.series(), "OpenMetrics and text disagree on the series"
    counters = {
        name
        for name, kind in scrape.types.items()
        if kind == "counter" and scrape.select(f"{name}_total")
    }
    assert {"covetd_http_requests", "covetd_worker_restarts", "process_cpu_seconds"} <= counters
    status, findings = promtool(reply.body)
    # Only promtool's text-format reading of OpenMetrics counters (see the docstring).
    assert set(findings) == {f"{name}_total no help text" for name in counters}, findings
    assert status == 3  # promtool's "lint problems"
