"""Fixtures for the metrics tests: ``metrics_server(config, ...)`` starts a covetd master
with metrics on (``support.metrics_server``); every one is stopped after the test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from support.metrics_server import MetricsServer, start_metrics_server


@pytest.fixture
def metrics_server() -> Iterator[Callable[..., MetricsServer]]:
    started: list[MetricsServer] = []

    def start(config: dict[str, Any] | None = None, **kwargs: Any) -> MetricsServer:
        server = start_metrics_server(config, **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
