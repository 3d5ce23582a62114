"""Fixtures shared by every test folder."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from support.process import Covetd


@pytest.fixture
def covetd() -> Iterator[Callable[..., Covetd]]:
    """Start covetd processes (``covetd("app:app", {...config...})``); all stopped after."""
    started: list[Covetd] = []

    def start(
        app: str, config: dict[str, Any] | None = None, *, wait: bool = True, **kwargs: Any
    ) -> Covetd:
        server = Covetd(app, config, **kwargs)
        started.append(server)
        return server.start(wait=wait)

    yield start
    for server in started:
        server.stop()
