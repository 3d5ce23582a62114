"""Fixtures for the master's reload, recycling, scaling, upgrade and balance scenarios.

``master(config)`` starts a covetd master (``support.master.start_master``) that
reports to its own ``NotifyRecorder``, on a reserved TCP port with per-slot
SO_REUSEPORT sockets (the production setup) unless ``shared=True`` (one ``fd://``
socket for every worker).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from support.master import Master, start_master
from support.notify import NotifyRecorder
from support.process import Covetd


@pytest.fixture
def master(covetd: Callable[..., Covetd]) -> Iterator[Callable[..., Master]]:
    recorders: list[NotifyRecorder] = []

    def start(config: dict[str, Any] | None = None, **kwargs: Any) -> Master:
        recorder = NotifyRecorder()
        recorders.append(recorder)
        return start_master(covetd, recorder, config, **kwargs)

    yield start
    for recorder in recorders:
        recorder.close()
