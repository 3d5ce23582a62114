"""One named PostgreSQL pool of a worker: asyncpg connections, bounded waits, health.

Made in the worker, after fork (``Databases.open``), never in the master. The
connections are asyncpg's; their bookkeeping is ``connections.py`` (not asyncpg's
``Pool``, whose lend-and-return costs as much CPU as a query). This file decides:

- **Bounded acquisition.** Waiting for a connection (queueing behind busy ones, and
  connecting) never exceeds ``acquire_timeout``: past it the request gets
  ``DatabaseUnavailable`` (503 + ``Retry-After``). So does a request whose connection
  breaks under it; a request arriving while the database is known to be down fails
  at once, without touching the network. An idle connection is lent without a timer.
- **Health** (``up``; see ``health.py``): decided by connection attempts, which all go
  through ``_open_connection``; logged once per change; a background watcher brings
  the pool back after an outage.
- **Helpers** that take a connection, run one statement and give it back: ``fetch``,
  ``fetchrow``, ``fetchval``, ``execute``, ``executemany``; and ``transaction()``.
- **Sessions come back clean.** ``acquire()`` and ``transaction()`` lend the session
  to the caller, so it is reset when the block ends (``Connection.reset()``: rollback,
  ``RESET ALL``, ``UNLISTEN *``, advisory locks, cursors). A helper runs one statement
  of the caller's and never lends the connection out: it only rolls back a
  transaction the statement left open. A connection whose protocol state is unknown
  after an error (a timeout, a cancellation, a driver error) is closed, not reused.
- **Events** for metrics (``events.py``), and ``stats()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

import asyncpg  # type: ignore[import-untyped,unused-ignore]

from ..config.schema import DatabaseConfig
from .connections import Connections
from .errors import (
    CLOSED,
    EXHAUSTED,
    LOST,
    UNREACHABLE,
    DatabaseConnectError,
    DatabaseUnavailable,
    lost_connection,
)
from .events import PoolObserver, PoolStats
from .health import Health

if TYPE_CHECKING:
    from asyncpg import Connection  # type: ignore[import-untyped,unused-ignore]
    from asyncpg.transaction import (  # type: ignore[import-untyped,unused-ignore]
        Transaction,
    )

__all__ = ["Isolation", "Pool", "connect_options"]

Isolation = Literal["read_committed", "read_uncommitted", "repeatable_read", "serializable"]

# After these, the connection's protocol state is unknown (a query may still be in
# flight, or half read): it is closed rather than lent again.
_UNSURE_STATE = (asyncio.CancelledError, TimeoutError, OSError, asyncpg.InterfaceError)


class _ConnectFailed(Exception):
    """A new connection could not be made (the cause is the driver's error)."""


def connect_options(config: DatabaseConfig) -> dict[str, Any]:
    """asyncpg ``connect()`` keywords for every connection of a pool."""
    settings = {"application_name": f"covetd worker {os.getpid()}"}
    settings.update(config.server_settings)
    options: dict[str, Any] = {
        "server_settings": settings,
        "statement_cache_size": config.statement_cache_size,
        "command_timeout": config.command_timeout,
        "timeout": config.acquire_timeout,  # one connection attempt
    }
    if config.ssl is not None:
        options["ssl"] = config.ssl
    return options


class Pool:
    """A worker's pool of connections to one database (``database.<name>``).

    >>> row = await app.db.fetchrow("SELECT id, name FROM users WHERE id = $1", 7)
    >>> async with app.db.acquire() as conn:     # one connection, several statements
    ...     ...
    >>> async with app.db.transaction() as conn: # committed unless the block raises
    ...     ...
    """

    def __init__(self, name: str, config: DatabaseConfig) -> None:
        self.name = name
        self.config = config
        #: Receives this pool's events (``PoolObserver``); None costs nothing.
        self.observer: PoolObserver | None = None
        self._acquire_timeout = config.acquire_timeout
        self._options = connect_options(config)
        self._health = Health(name, self._probe, self._state_changed)
        self._conns: Connections | None = None

    def __repr__(self) -> str:
        return f"<Pool {self.name!r} {'up' if self.up else 'down'}>"

    # -- life --------------------------------------------------------------------------

    async def open(self) -> None:
        """Start the pool. ``connect: eager`` opens ``min_size`` connections now (at
        least one, to prove the database is there) and raises ``DatabaseConnectError``
        naming the pool if it cannot; ``lazy`` opens none until one is needed."""
        config = self.config
        conns = Connections(
            config.min_size, config.max_size, config.max_inactive_connection_lifetime
        )
        self._conns = conns
        if config.connect == "eager":
            try:
                await self._open_eagerly(conns, max(config.min_size, 1))
            except BaseException:
                self._conns = None
                await conns.close(0, lambda: self._unavailable(CLOSED))
                raise
        self._health.arm()

    async def _open_eagerly(self, conns: Connections, count: int) -> None:
        for _ in range(count):
            conns.reserve()
        results = await asyncio.gather(
            *(self._open_connection() for _ in range(count)), return_exceptions=True
        )
        for result in results:
            if not isinstance(result, BaseException):
                conns.give_back(result)
        for result in results:
            if isinstance(result, _ConnectFailed):
                raise DatabaseConnectError(self.name, self.config.dsn, result.__cause__ or result)
            if isinstance(result, BaseException):
                raise result

    async def close(self, timeout: float = 5.0) -> None:
        """Stop lending; close every connection once given back; past ``timeout``,
        cut those still lent."""
        await self._health.close()
        conns = self._conns
        if conns is not None and not conns.closing:
            await conns.close(timeout, lambda: self._unavailable(CLOSED))

    # -- state -------------------------------------------------------------------------

    @property
    def up(self) -> bool:
        """False while the database is known to be unreachable (``/readyz``)."""
        return self._health.up

    def stats(self) -> PoolStats:
        conns = self._conns
        if conns is None:
            return PoolStats(0, 0, 0, self.config.min_size, self.config.max_size, self.up)
        return PoolStats(
            size=conns.size,
            idle=len(conns.idle),
            in_use=len(conns.lent),
            min_size=conns.min_size,
            max_size=conns.max_size,
            up=self._health.up,
        )

    # -- connections -------------------------------------------------------------------

    def acquire(self) -> _Lease:
        """``async with pool.acquire() as conn``: one connection for a block.

        Raises ``DatabaseUnavailable`` when none can be had within
        ``acquire_timeout`` or the connection breaks inside the block. The session
        is reset when the block ends; do not keep ``conn`` beyond it.
        """
        return _Lease(self)

    def transaction(
        self,
        *,
        isolation: Isolation | None = None,
        readonly: bool = False,
        deferrable: bool = False,
    ) -> _TransactionLease:
        """``async with pool.transaction() as conn``: a connection in a transaction,
        committed when the block ends, rolled back if it raises."""
        return _TransactionLease(self, isolation, readonly, deferrable)

    async def fetch(self, query: str, *args: Any, timeout: float | None = None) -> list[Any]:
        """All rows of ``query`` (a list of ``asyncpg.Record``)."""
        conn = await self._take()
        try:
            rows: list[Any] = await conn.fetch(query, *args, timeout=timeout)
        except BaseException as exc:
            raise await self._failed(conn, exc)  # noqa: B904 - the cause is set
        await self._give_back(conn)
        return rows

    async def fetchrow(self, query: str, *args: Any, timeout: float | None = None) -> Any:
        """The first row of ``query`` (an ``asyncpg.Record``), or None."""
        conn = await self._take()
        try:
            row: Any = await conn.fetchrow(query, *args, timeout=timeout)
        except BaseException as exc:
            raise await self._failed(conn, exc)  # noqa: B904 - the cause is set
        await self._give_back(conn)
        return row

    async def fetchval(
        self, query: str, *args: Any, column: int = 0, timeout: float | None = None
    ) -> Any:
        """One value of the first row of ``query``, or None."""
        conn = await self._take()
        try:
            value: Any = await conn.fetchval(query, *args, column=column, timeout=timeout)
        except BaseException as exc:
            raise await self._failed(conn, exc)  # noqa: B904 - the cause is set
        await self._give_back(conn)
        return value

    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:
        """Run ``query``; returns its status (``"UPDATE 3"``)."""
        conn = await self._take()
        try:
            status: str = await conn.execute(query, *args, timeout=timeout)
        except BaseException as exc:
            raise await self._failed(conn, exc)  # noqa: B904 - the cause is set
        await self._give_back(conn)
        return status

    async def executemany(self, query: str, args: Any, *, timeout: float | None = None) -> None:
        """Run ``query`` once per argument tuple in ``args``, in one round trip."""
        conn = await self._take()
        try:
            await conn.executemany(query, args, timeout=timeout)
        except BaseException as exc:
            raise await self._failed(conn, exc)  # noqa: B904 - the cause is set
        await self._give_back(conn)

    # -- taking and giving back --------------------------------------------------------

    async def _take(self) -> Connection:
        """A connection within ``acquire_timeout``, or ``DatabaseUnavailable``."""
        if not self._health.up:
            raise self._unavailable(UNREACHABLE)
        conns = self._conns
        if conns is None or conns.closing:
            raise self._unavailable(CLOSED)
        conn: Connection | None = conns.take_idle()
        if conn is None:
            return await self._take_waiting(conns)
        if self.observer is not None:
            self.observer.acquired(self, 0.0)
        return conn

    async def _take_waiting(self, conns: Connections) -> Connection:
        """No idle connection: open one in a free slot, or queue for one."""
        observer = self.observer
        started = time.monotonic() if observer is not None else 0.0
        connecting = False
        try:
            async with asyncio.timeout(self._acquire_timeout):
                handed = None if conns.reserve() else await conns.wait()
                if handed is None:  # we hold a slot: open a connection in it
                    if not self._health.up:
                        conns.release_slot()
                        raise self._unavailable(UNREACHABLE)
                    connecting = True
                    handed = await self._open_connection()
                conn: Connection = handed
        except TimeoutError as exc:
            if connecting:  # the database did not answer in time
                reason = TimeoutError(f"no connection within {self._acquire_timeout:g}s")
                self._health.unreachable(reason)
                raise self._unavailable(UNREACHABLE) from exc
            raise self._unavailable(EXHAUSTED) from exc
        except _ConnectFailed as exc:
            raise self._unavailable(UNREACHABLE) from exc.__cause__
        if observer is not None:
            observer.acquired(self, time.monotonic() - started)
        return conn

    async def _open_connection(self) -> Connection:
        """Open a connection in a reserved slot: every connection attempt comes here,
        which makes it the health evidence."""
        conns = self._conns
        assert conns is not None
        try:
            conn: Connection = await asyncpg.connect(self.config.dsn, **self._options)
        except BaseException as exc:
            conns.release_slot()
            if isinstance(exc, Exception):
                self._health.unreachable(exc)
                raise _ConnectFailed() from exc
            raise
        self._health.reachable()
        conn.add_termination_listener(self._terminated)
        conns.opened(conn)
        return conn

    def _terminated(self, conn: Any) -> None:
        """asyncpg's termination listener: any close, ours included (then a no-op)."""
        conns = self._conns
        if conns is not None and conns.forget(conn):
            self._health.check()

    async def _give_back(self, conn: Connection) -> None:
        """After a helper's statement: roll back a transaction it left open."""
        if conn.is_in_transaction():
            try:
                await conn.execute("ROLLBACK")
            except BaseException:
                conn.terminate()
                raise
            finally:
                self._return(conn)
            return
        self._return(conn)

    def _return(self, conn: Connection) -> None:
        conns = self._conns
        if conns is not None:
            conns.give_back(conn)
        else:
            conn.terminate()

    async def _failed(self, conn: Connection, error: BaseException) -> BaseException:
        """Give ``conn`` back after ``error`` and return what the caller should see:
        a broken connection becomes 503; anything else is the caller's own error."""
        lost = lost_connection(error, conn.is_closed())
        if lost or isinstance(error, _UNSURE_STATE) or not isinstance(error, asyncpg.PostgresError):
            conn.terminate()
            self._return(conn)
        else:  # the server refused the statement; the session is in sync
            with contextlib.suppress(Exception):  # (a failed rollback closed it)
                await self._give_back(conn)
        if lost:
            unavailable = self._unavailable(LOST)
            unavailable.__cause__ = error
            return unavailable
        return error

    def _unavailable(self, reason: str) -> DatabaseUnavailable:
        error = DatabaseUnavailable(self.name, reason)
        if self.observer is not None:
            self.observer.failed(self, error)
        return error

    # -- health ------------------------------------------------------------------------

    async def _probe(self) -> None:
        """Open a connection and make one round trip (the health test); if the pool
        is full, the round trip runs on an idle connection. Connecting is bounded by
        the driver's own timeout (``acquire_timeout``), so that a connection attempt
        that hangs counts as a failed one."""
        conns = self._conns
        if conns is None or conns.closing:
            raise RuntimeError("closed")
        conn: Connection | None
        if conns.reserve():
            conn = await self._open_connection()
        else:
            conn = conns.take_idle()
            if conn is None:
                raise RuntimeError("every connection is lent")
        try:
            await conn.fetchval("SELECT 1", timeout=self._acquire_timeout)
        except BaseException:
            conn.terminate()
            raise
        finally:
            self._return(conn)

    def _state_changed(self, up: bool) -> None:
        if self.observer is not None:
            self.observer.state_changed(self, up)


class _Lease:
    """``pool.acquire()``: lends one connection for an ``async with`` block."""

    __slots__ = ("_conn", "_pool")

    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self._conn: Connection | None = None

    async def __aenter__(self) -> Connection:
        self._conn = conn = await self._pool._take()
        return conn

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn, self._conn = self._conn, None
        assert conn is not None
        pool = self._pool
        lost = exc is not None and lost_connection(exc, conn.is_closed())
        if lost or isinstance(exc, _UNSURE_STATE) or conn.is_closed():
            conn.terminate()
        else:
            try:  # the caller had the session: it goes back as a new one
                await conn.reset(timeout=pool._acquire_timeout)
            except Exception:  # the block's outcome stands; the connection goes
                conn.terminate()
            except BaseException:
                conn.terminate()
                pool._return(conn)
                raise
        pool._return(conn)
        if lost:
            raise pool._unavailable(LOST) from exc


class _TransactionLease(_Lease):
    """``pool.transaction()``: a lent connection inside a transaction."""

    __slots__ = ("_options", "_transaction")

    def __init__(
        self, pool: Pool, isolation: Isolation | None, readonly: bool, deferrable: bool
    ) -> None:
        super().__init__(pool)
        self._options = (isolation, readonly, deferrable)
        self._transaction: Transaction | None = None

    async def __aenter__(self) -> Connection:
        conn = await super().__aenter__()
        isolation, readonly, deferrable = self._options
        transaction = conn.transaction(
            isolation=isolation, readonly=readonly, deferrable=deferrable
        )
        try:
            await transaction.start()
        except BaseException as exc:
            await super().__aexit__(type(exc), exc, exc.__traceback__)
            raise
        self._transaction = transaction
        return conn

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        transaction, self._transaction = self._transaction, None
        assert transaction is not None
        if exc is None:
            try:
                await transaction.commit()
            except BaseException as error:  # the commit's failure is the block's outcome
                await super().__aexit__(type(error), error, error.__traceback__)
                raise
        elif not isinstance(exc, _UNSURE_STATE) and not lost_connection(exc, False):
            with contextlib.suppress(Exception):  # the reset that follows settles it
                await transaction.rollback()
        await super().__aexit__(exc_type, exc, tb)
