"""``metrics.path``: the master's metrics also on the app's port, for a Covet app and an
ASGI app; other paths still reach the app."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from support.metrics_server import OPENMETRICS, REQUESTS, MetricsServer, Scrape, http_get

Start = Callable[..., MetricsServer]


@pytest.mark.parametrize("app", ["metrics_app:app", "asgi_raw:app"])
def test_metrics_path_on_the_app_port_is_the_masters_metrics(
    metrics_server: Start, app: str
) -> None:
    server = metrics_server({"metrics": {"path": "/_metrics"}}, app=app)
    for _ in range(5):
        assert http_get(server.port, "/").status in (200, 404)  # the app answers
    reply = http_get(server.port, "/_metrics")
    assert reply.status == 200, reply
    assert reply.content_type.startswith("text/plain")
    body = reply.body.decode()
    assert f"# TYPE {REQUESTS} counter" in body
    assert Scrape(body, openmetrics=False).total(REQUESTS) >= 5
    assert "covetd_workers 2.0" in body  # the master's own series: it came from the master


def test_metrics_path_honours_openmetrics(metrics_server: Start) -> None:
    server = metrics_server({"metrics": {"path": "/_metrics"}})
    reply = http_get(server.port, "/_metrics", {"Accept": OPENMETRICS})
    assert reply.status == 200
    assert reply.content_type.startswith("application/openmetrics-text")
    assert reply.body.rstrip().endswith(b"# EOF")


def test_without_metrics_path_the_app_owns_every_path(metrics_server: Start) -> None:
    server = metrics_server()
    assert http_get(server.port, "/_metrics").status == 404
