"""Database pool metrics: ``covetd_db_pool_*`` from the pools' events (``covetd.db``).

Acquire waits and failures are counted as they happen (a few cell additions); the
connection gauges are sampled once a second from each pool's ``stats()``, like the
engine's gauges. ``covetd_db_pool_connections{pool,state}`` has the states ``idle``
and ``in_use`` (connections open), and ``max`` (the pool's ``max_size``), so a
saturation alert is ``in_use / max``.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..db.events import PoolObserver
from .cells import CellWriter
from .instruments import LAG_INTERVAL

if TYPE_CHECKING:
    from ..db.databases import Databases
    from ..db.errors import DatabaseUnavailable
    from ..db.pool import Pool

__all__ = ["PoolEvents", "PoolMetrics"]

ACQUIRE = "covetd_db_pool_acquire_seconds"
CONNECTIONS = "covetd_db_pool_connections"
ERRORS = "covetd_db_pool_errors_total"
STATES = ("idle", "in_use", "max")


class PoolMetrics(PoolObserver):
    """Writes one worker's pool metrics into its cells."""

    def __init__(self, writer: CellWriter, buckets: tuple[float, ...]) -> None:
        self.writer = writer
        self.cells = writer.cells
        self.buckets = buckets
        self._series: dict[str, int] = {}  # pool name -> its acquire sum cell

    def acquired(self, pool: Pool, wait_seconds: float) -> None:
        base = self._series.get(pool.name)
        if base is None:
            base = self._allocate(pool.name)
        cells = self.cells
        cells[base] += wait_seconds
        cells[base + 1 + bisect_left(self.buckets, wait_seconds)] += 1

    def failed(self, pool: Pool, error: DatabaseUnavailable) -> None:
        self.cells[self.writer.cell(ERRORS, (pool.name,))] += 1

    def _allocate(self, name: str) -> int:
        base = self.writer.cell(ACQUIRE, (name, "sum"))
        for bound in (*self.buckets, float("inf")):
            self.writer.cell(ACQUIRE, (name, f"le={bound!r}"))
        self._series[name] = base
        return base

    def watch(self, loop: asyncio.AbstractEventLoop, databases: Databases) -> None:
        """Once a second: each pool's connections by state."""
        cells = self.cells
        gauges = {
            name: [self.writer.cell(CONNECTIONS, (name, state)) for state in STATES]
            for name in databases
        }

        def tick() -> None:
            for name, (idle, in_use, most) in gauges.items():
                stats = databases[name].stats()
                cells[idle] = stats.idle
                cells[in_use] = stats.in_use
                cells[most] = stats.max_size
            loop.call_later(LAG_INTERVAL, tick)

        tick()


class PoolEvents(PoolObserver):
    """A worker's one observer of its pools: metrics (when on) and ``health``, called
    when a pool goes down or comes back (the worker tells the master, for /readyz)."""

    def __init__(self, metrics: PoolMetrics | None, health: Callable[[], None]) -> None:
        self.metrics = metrics
        self.health = health

    def acquired(self, pool: Pool, wait_seconds: float) -> None:
        if self.metrics is not None:
            self.metrics.acquired(pool, wait_seconds)

    def failed(self, pool: Pool, error: DatabaseUnavailable) -> None:
        if self.metrics is not None:
            self.metrics.failed(pool, error)

    def state_changed(self, pool: Pool, up: bool) -> None:
        self.health()
