"""The broadcast backend ``websocket.broadcast`` names."""

from __future__ import annotations

from ..config import BroadcastConfig
from .hub import Backend

__all__ = ["backend_for"]


def backend_for(config: BroadcastConfig) -> Backend:
    if config.backend == "redis":
        from .redis import RedisBackend

        assert config.url is not None  # the schema requires it
        return RedisBackend(config.url)
    if config.backend == "postgres":
        from .postgres import PostgresBackend

        assert config.url is not None
        return PostgresBackend(config.url)
    from .local import LocalBackend

    return LocalBackend()
