"""One worker's link to Redis for a middleware (rate limits, sessions): bounded in time.

A down Redis must never hang a request. Every call runs under ``timeout`` (connect and
reply), redis-py's own retries are off (a retry is a second timeout), and after a
failure the link stays *down* for ``backoff`` seconds: calls fail at once with
``RedisUnavailable`` instead of each paying the timeout again. The client is made on
first use, inside the worker's event loop (never in the master, never by
``--check-config``).
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

__all__ = ["RedisLink", "RedisUnavailable", "redis_missing"]

error_log = logging.getLogger("covetd.error")
T = TypeVar("T")

INSTALL_HINT = "the redis backend needs the redis package: pip install 'covetd[redis]'"


def redis_missing() -> bool:
    """True when redis-py is not installed (checked when options are validated)."""
    return importlib.util.find_spec("redis") is None


class RedisUnavailable(Exception):
    """Redis did not answer in time, refused the connection, or failed the command."""


class RedisLink:
    """Lazily connected, time-bounded Redis access (see the module docstring)."""

    def __init__(self, url: str, timeout: float, backoff: float = 1.0) -> None:
        self.url = url
        self.timeout = timeout
        self.backoff = backoff
        self._client: Any = None
        self._down_until = 0.0
        self._logged_at = -1e9

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = _make_client(self.url, self.timeout)
        return self._client

    async def call(self, operation: Callable[[Any], Awaitable[T]]) -> T:
        """``await operation(client)`` within ``timeout``; ``RedisUnavailable`` otherwise."""
        if time.monotonic() < self._down_until:
            raise RedisUnavailable(f"Redis at {self._safe_url()} is down (backing off)")
        try:
            return await self._bounded(operation)
        except (TimeoutError, OSError, _redis_error()) as exc:
            self._down_until = time.monotonic() + self.backoff
            self._log(exc)
            message = f"Redis at {self._safe_url()}: {exc or type(exc).__name__}"
            raise RedisUnavailable(message) from exc

    async def _bounded(self, operation: Callable[[Any], Awaitable[T]]) -> T:
        """Run ``operation`` in a task of its own and wait for it at most ``timeout``.

        Its own task, not ``asyncio.timeout`` around the await: a timeout cancels the
        *current* task, which for a request is the engine's connection driver, and on
        Python 3.11 a cancellation that races the operation's completion can stay
        pending and hit the driver later. Cancelling a task we own is always safe.
        """
        task = asyncio.ensure_future(operation(self.client))
        try:
            done, _ = await asyncio.wait((task,), timeout=self.timeout)
        finally:
            if not task.done():
                task.cancel()
        if not done:
            raise TimeoutError(f"no answer within {self.timeout:g}s")
        return task.result()

    def _log(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._logged_at >= 10.0:  # one line per 10 s, not one per request
            self._logged_at = now
            error_log.error("Redis at %s failed: %r", self._safe_url(), exc)

    def _safe_url(self) -> str:
        scheme, sep, rest = self.url.partition("://")
        return f"{scheme}{sep}{rest.rpartition('@')[2]}" if sep else self.url


def _make_client(url: str, timeout: float) -> Any:
    try:
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
    except ImportError:  # pragma: no cover - checked when the options were read
        raise RuntimeError(INSTALL_HINT) from None
    return Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )


def _redis_error() -> type[Exception]:
    from redis.exceptions import RedisError

    return RedisError
