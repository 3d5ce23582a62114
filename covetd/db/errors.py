"""What a database pool raises, and which driver errors mean "the database is gone".

Two errors, one per audience:

- ``DatabaseUnavailable`` reaches the *client*: an ``HTTPException`` that answers
  **503** with ``Retry-After``, raised when a request cannot get a working connection
  (the pool is exhausted past ``acquire_timeout``, the database is unreachable, or the
  connection broke under the request). Errors *of a query* (SQL errors, constraint
  violations, ``statement_timeout``, ``command_timeout``) are not translated: they are
  the application's, and surface unchanged.
- ``DatabaseConnectError`` reaches the *operator*: an eager pool could not connect while
  the worker booted; its one-line message names the pool and the (masked) DSN, and the
  worker fails its boot with it.

Driver errors are translated here, at the boundary (``lost_connection``), so the rest
of ``covetd.db`` speaks only these two.
"""

from __future__ import annotations

import asyncpg  # type: ignore[import-untyped,unused-ignore]

from ..app.exceptions import HTTPException
from ..config.masking import mask_url

__all__ = ["DatabaseConnectError", "DatabaseUnavailable", "lost_connection"]

#: ``DatabaseUnavailable.reason`` values (bounded: fit for a metric label).
EXHAUSTED = "exhausted"
UNREACHABLE = "unreachable"
LOST = "lost"
CLOSED = "closed"

RETRY_AFTER_SECONDS = 1


class DatabaseUnavailable(HTTPException):
    """The request could not get a working database connection: 503, ``Retry-After``.

    ``pool`` names the pool; ``reason`` is ``"exhausted"`` (every connection stayed
    busy for ``acquire_timeout``), ``"unreachable"`` (the database cannot be reached:
    connecting failed, or the pool is known to be down and fails fast) or ``"lost"``
    (the connection broke while the request used it), or ``"closed"`` (the worker is
    closing its pools). The driver's error, if any, is ``__cause__``.
    """

    def __init__(self, pool: str, reason: str, retry_after: int = RETRY_AFTER_SECONDS) -> None:
        super().__init__(
            503,
            f"database {pool!r} is unavailable ({reason})",
            {"Retry-After": str(retry_after)},
        )
        self.pool = pool
        self.reason = reason
        self.retry_after = retry_after


class DatabaseConnectError(RuntimeError):
    """An eager pool could not connect at worker start (the worker fails its boot)."""

    def __init__(self, pool: str, dsn: str, error: BaseException) -> None:
        detail = " ".join(f"{type(error).__name__}: {error}".split())
        super().__init__(f"database pool {pool!r} cannot connect to {mask_url(dsn)}: {detail}")
        self.pool = pool


# A server going away shows as one of these on a connection that was open: the socket
# breaks (OSError), asyncpg notices the connection is gone (class 08), the server says
# it is shutting down / restarting / not accepting yet (57P01, 57P02, 57P03), or the
# connection is caught between the server's farewell (an unsolicited FATAL error on an
# idle connection) and the socket's close: asyncpg then refuses to start a query
# ("another operation is in progress", an InternalClientError).
_LOST_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.CannotConnectNowError,
    asyncpg.exceptions.InternalClientError,
)


def lost_connection(error: BaseException, connection_closed: bool) -> bool:
    """Did ``error`` (raised while using a connection) mean the connection broke?

    A timeout is never a broken connection (it is the query's ``command_timeout``);
    an ``InterfaceError`` is one only when the connection is in fact closed
    (otherwise it is a misuse, such as using a released connection).
    """
    if isinstance(error, TimeoutError):
        return False
    if isinstance(error, _LOST_ERRORS):
        return True
    return connection_closed and isinstance(error, asyncpg.InterfaceError)
