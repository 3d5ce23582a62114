"""A worker's pools by name (the ``database:`` section), opened and closed together.

The worker opens them after fork, before the app's startup (``Databases.open``), so a
worker reports ready only once its eager pools are connected; it closes them after
the app's shutdown, i.e. after in-flight requests finished. The master never opens
one: pools are per process, and a pool inherited through fork would share its
sockets between processes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping

from ..config.schema import DatabaseConfig
from .events import PoolObserver
from .pool import Pool

__all__ = ["Databases"]


class Databases(Mapping[str, Pool]):
    """Read-only mapping of pool name to ``Pool`` (``app.databases``)."""

    def __init__(self, pools: Mapping[str, Pool]) -> None:
        self._pools = dict(pools)
        self._observer: PoolObserver | None = None

    @classmethod
    async def open(cls, configs: Mapping[str, DatabaseConfig]) -> Databases:
        """Open every pool (eager ones connect now; see ``Pool.open``).

        If one fails, the others are closed and the error (a ``DatabaseConnectError``
        naming the pool) is raised; if the opening is cancelled, all are closed.
        """
        pools = {name: Pool(name, config) for name, config in configs.items()}
        try:
            results = await asyncio.gather(
                *(pool.open() for pool in pools.values()), return_exceptions=True
            )
        except BaseException:  # cancelled: the worker was told to stop while booting
            await asyncio.gather(*(pool.close(0) for pool in pools.values()))
            raise
        failures = [result for result in results if isinstance(result, BaseException)]
        if failures:
            await asyncio.gather(*(pool.close() for pool in pools.values()))
            raise failures[0]
        return cls(pools)

    async def close(self, timeout: float = 5.0) -> None:
        """Close every pool; connections still lent after ``timeout`` are cut."""
        await asyncio.gather(*(pool.close(timeout) for pool in self._pools.values()))

    @property
    def up(self) -> bool:
        """True unless some pool's database is known to be unreachable (``/readyz``)."""
        return all(pool.up for pool in self._pools.values())

    def health(self) -> dict[str, bool]:
        """Each pool's ``up``, by name."""
        return {name: pool.up for name, pool in self._pools.items()}

    @property
    def observer(self) -> PoolObserver | None:
        """One observer for every pool (events carry the pool); None removes it."""
        return self._observer

    @observer.setter
    def observer(self, observer: PoolObserver | None) -> None:
        self._observer = observer
        for pool in self._pools.values():
            pool.observer = observer

    def __getitem__(self, name: str) -> Pool:
        return self._pools[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._pools)

    def __len__(self) -> int:
        return len(self._pools)

    def __repr__(self) -> str:
        return f"<Databases {list(self._pools)}>"
