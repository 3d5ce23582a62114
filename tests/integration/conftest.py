"""Integration fixtures: a covetd process shared by the tests of one module.

``module_covetd`` starts servers like the ``covetd`` fixture, but they live until the
module's last test: for modules whose tests can share one configuration and whose
checks do not depend on a fresh process (counters are keyed per test).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from support.process import Covetd


@pytest.fixture(scope="module")
def module_covetd() -> Iterator[Callable[..., Covetd]]:
    started: list[Covetd] = []

    def start(app: str, config: dict[str, Any] | None = None, **kwargs: Any) -> Covetd:
        server = Covetd(app, config, **kwargs)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()
