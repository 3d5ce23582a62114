"""What a pool reports as it works (STYLE habit 6), for metrics to subscribe to.

Install an observer with ``pool.observer = MyObserver()`` (or ``databases.observer``
for every pool). Without one, the pool pays one ``is None`` test per event and never
reads the clock. Gauges (connections open, idle, in use) are read when wanted, from
``pool.stats()``, rather than pushed on every acquire and release.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .errors import DatabaseUnavailable
    from .pool import Pool

__all__ = ["PoolObserver", "PoolStats"]


@dataclass(frozen=True, slots=True)
class PoolStats:
    """A pool's connections at one moment (``covetd_db_pool_connections{state}``)."""

    size: int  # connections open
    idle: int  # open and free
    in_use: int  # open and lent to a request
    min_size: int
    max_size: int
    up: bool  # False while the database is known to be unreachable


class PoolObserver:
    """Override the events you need; the defaults do nothing."""

    def acquired(self, pool: Pool, wait_seconds: float) -> None:
        """A connection was lent after ``wait_seconds`` (queueing and connecting)."""

    def failed(self, pool: Pool, error: DatabaseUnavailable) -> None:
        """A request got ``error`` (503) instead of a working connection."""

    def state_changed(self, pool: Pool, up: bool) -> None:
        """The database became unreachable (``up=False``) or reachable again."""
