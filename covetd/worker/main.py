"""One worker's life: load the app, start it up, serve, drain, shut it down, exit.

A worker runs under the master (``covetd/master/arbiter.py``), which forks it with
its listening sockets and a control channel (``control.py``): it reports ``ready``
once its app started and it listens, and a heartbeat from inside its event loop (so
a blocked loop goes silent and gets replaced).

Signals: TERM = graceful stop (in-flight requests finish within graceful_timeout),
INT/QUIT = fast stop, USR1 = reopen log files, USR2 = dump every thread's stack to
the error log (the master sends it to a worker whose loop is blocked, then kills it).

Exit codes (named, gunicorn-style, so the master can tell a crash from a boot
failure): 0 stopped normally, 3 the app failed to load or start.
"""

from __future__ import annotations

import asyncio
import faulthandler
import logging
import os
import random
import signal
import socket
import ssl
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import uvloop

from ..app.application import Covet
from ..app.routing import WEBSOCKET
from ..config import Config, ConfigError, TlsConfig
from ..config.masking import mask_url
from ..engine.asgi import AsgiRunner
from ..engine.asgi_endpoint import AsgiEndpoint
from ..engine.asgi_lifespan import AsgiLifespan, LifespanFailure
from ..engine.events import EngineObserver, ObserverGroup
from ..engine.native import NativeRunner
from ..engine.protocol import HttpProtocol
from ..engine.server import HttpServer, Runner
from ..logs import reopen_logs
from ..metrics.app_path import MetricsPath
from ..metrics.cells import CellWriter
from ..metrics.instruments import EngineMetrics
from ..middleware.access_log import AccessLogMiddleware
from ..middleware.pipeline import build_chain, chain_members, config_defaults, configured_entries
from ..websocket.backends import backend_for
from ..websocket.hub import Backend
from .appload import AppLoadError, load_app
from .control import LineReader, recv_with_fds, send_line

__all__ = ["DUMP_SIGNAL", "EXIT_BOOT_FAILURE", "EXIT_OK", "Worker", "run_worker"]

error_log = logging.getLogger("covetd.error")

EXIT_OK = 0
EXIT_BOOT_FAILURE = 3

# Signals that belong to the master; a worker in the same process group ignores them.
_MASTER_SIGNALS = (signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU, signal.SIGWINCH)
DUMP_SIGNAL = signal.SIGUSR2
RECYCLE_ASK_EVERY = 5.0  # seconds between asks to be recycled (max_requests)


class _AppAdapter:
    """What the worker needs from any app: a startup, a runner, a shutdown.

    The runner is made after startup, so middleware an app adds while starting up is
    in the chain. Config middleware wraps a Covet app's handler, or an ASGI app turned
    into a handler (``AsgiEndpoint``); without any, an ASGI app runs on the plain,
    faster ``AsgiRunner``.
    """

    def __init__(self, app: Any, config: Config) -> None:
        self.app = app
        self.config = config
        self.startup: Callable[[], Awaitable[None]]
        self.shutdown: Callable[[], Awaitable[None]]
        self.lifespan: AsgiLifespan | None = None
        self.databases: Any = None
        self.chain: object = None  # the middleware chain (runner() builds it)
        self.broadcast: Backend | None = None
        if isinstance(app, Covet):
            self.startup, self.shutdown = app.startup, app.shutdown
        elif callable(app):
            self.lifespan = AsgiLifespan(app)
            self.startup, self.shutdown = self.lifespan.startup, self.lifespan.shutdown
        else:
            raise AppLoadError(
                f"{type(app).__name__} object is neither a Covet app nor an ASGI app"
            )

    async def open_databases(self) -> None:
        """Open the worker's pools (after fork, never in the master) and hand them to
        the app: ``app.databases``/``app.db`` for Covet, lifespan ``state`` (hence
        ``scope["state"]``) for ASGI apps."""
        if not self.config.database:
            return
        from ..db import Databases

        self.databases = await Databases.open(self.config.database)
        if self.lifespan is None:
            self.app.databases = self.databases
        else:
            self.lifespan.state["databases"] = self.databases
            if "default" in self.databases:
                self.lifespan.state["db"] = self.databases["default"]

    async def close_databases(self) -> None:
        if self.databases is not None:
            await self.databases.close()

    async def open_broadcast(self) -> None:
        """Connect a Covet app's rooms to the other workers (and hosts): only for an
        app with WebSocket routes or one that already used ``app.hub``."""
        app = self.app
        if self.lifespan is not None:
            return
        if "_hub" not in app.__dict__ and not any(WEBSOCKET in r.methods for r in app.routes):
            return
        backend = backend_for(self.config.websocket.broadcast)
        try:
            await backend.start(app.hub)
        except Exception as exc:
            url = mask_url(self.config.websocket.broadcast.url or "")
            raise RuntimeError(
                f"websocket.broadcast: the {self.config.websocket.broadcast.backend} backend"
                f" {url} cannot start: {exc}"
            ) from exc
        app.hub.backend = self.broadcast = backend

    async def close_broadcast(self) -> None:
        if self.broadcast is not None:
            self.app.hub.backend = None
            try:
                await self.broadcast.stop()
            except Exception:
                error_log.exception("stopping the broadcast backend failed")

    def runner(self) -> Runner:
        entries = configured_entries(self.config)
        defaults = config_defaults(self.config)
        metrics = self.config.metrics
        relay_metrics = metrics.enabled and metrics.path is not None
        self.chain = None
        if self.lifespan is None:
            chain = build_chain(entries, self.app.handle, defaults)
        elif not entries and not relay_metrics:
            return AsgiRunner(self.app, self.lifespan.state)
        else:
            endpoint = AsgiEndpoint(self.app, self.lifespan.state)
            chain = build_chain(entries, endpoint, defaults)
        self.chain = chain
        if relay_metrics:
            assert metrics.path is not None
            chain = MetricsPath(chain, metrics.path, metrics.bind)
        return NativeRunner(chain)


def tls_context(tls: TlsConfig) -> ssl.SSLContext | None:
    if not tls.certfile:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = (
        ssl.TLSVersion.TLSv1_3 if tls.minimum_version == "TLSv1.3" else ssl.TLSVersion.TLSv1_2
    )
    context.load_cert_chain(tls.certfile, tls.keyfile, tls.password)
    if tls.ca_certs:
        context.load_verify_locations(tls.ca_certs)
    context.verify_mode = {
        "none": ssl.CERT_NONE,
        "optional": ssl.CERT_OPTIONAL,
        "required": ssl.CERT_REQUIRED,
    }[tls.cert_reqs]
    if tls.ciphers:
        context.set_ciphers(tls.ciphers)
    context.set_alpn_protocols(["http/1.1"])
    return context


def heartbeat_interval(worker_timeout: float) -> float:
    """Beat often enough that one or two lost beats never look like a hang."""
    return max(0.05, min(1.0, worker_timeout / 5))


class _RefusalsLogged(EngineObserver):
    """Hands the engine's refusals to an access log (which, being middleware, does not
    know the engine)."""

    def __init__(self, access_log: AccessLogMiddleware) -> None:
        self.access_log = access_log

    def request_refused(self, conn: HttpProtocol, method: str | None, status: int) -> None:
        self.access_log.log_refused(conn.client, method, status)


class Worker:
    """Serves ``app`` on ``sockets`` until TERM (graceful) or INT/QUIT (fast)."""

    def __init__(
        self,
        config: Config,
        app: Any,
        sockets: dict[int, socket.socket],
        control: socket.socket | None = None,
    ) -> None:
        self.config = config
        self.adapter = _AppAdapter(app, config)
        self.sockets = dict(sockets)
        self.control = control
        self.server: HttpServer | None = None
        self.engine_metrics: EngineMetrics | None = None
        self._stop: asyncio.Future[float] | None = None
        self._reader = LineReader()
        self._recycle_asked_at = -RECYCLE_ASK_EVERY
        jitter = config.server.max_requests_jitter
        self._max_requests = config.server.max_requests + (
            random.randint(0, jitter) if jitter else 0
        )

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        self._stop = loop.create_future()
        self._install_signals(loop)
        try:
            if not await self._start_app():
                return EXIT_OK  # told to stop while starting: nothing was served
        except LifespanFailure as exc:
            error_log.error("application startup failed: %s", exc)
            return EXIT_BOOT_FAILURE
        except Exception as exc:
            error_log.error(
                "application startup failed: %s: %s",
                type(exc).__name__,
                exc,
                exc_info=error_log.isEnabledFor(logging.DEBUG),
            )
            return EXIT_BOOT_FAILURE
        try:
            runner = self.adapter.runner()
        except ConfigError as exc:
            error_log.error("%s", exc)
            return EXIT_BOOT_FAILURE
        self.server = HttpServer(
            runner,
            self.config.http,
            ssl_context=tls_context(self.config.tls),
            observer=self._observer(),
            backlog=self.config.server.backlog,
            websocket=self.config.websocket,
        )
        if self.engine_metrics is not None:
            self.engine_metrics.watch(loop, self.server)
        self._observe_pools(loop)
        await self.server.start(list(self.sockets.values()))
        self._connect_control(loop)
        self.report_health(initial=True)
        timeout = await self._stop
        await self.server.shutdown(timeout)
        await self.adapter.close_broadcast()
        try:
            await self.adapter.shutdown()
        except Exception:
            error_log.exception("application shutdown failed")
        await self.adapter.close_databases()
        return EXIT_OK

    async def _start_app(self) -> bool:
        """Open the pools and run the app's startup; False if a stop came first."""
        assert self._stop is not None
        starting = asyncio.get_running_loop().create_task(self._open_and_start())
        pending: set[asyncio.Future[Any]] = {starting, self._stop}
        await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        if starting.done():
            starting.result()  # raises what startup raised
            return True
        starting.cancel()
        await asyncio.gather(starting, return_exceptions=True)
        await self.adapter.close_broadcast()
        await self.adapter.close_databases()
        return False

    async def _open_and_start(self) -> None:
        await self.adapter.open_databases()
        await self.adapter.startup()
        await self.adapter.open_broadcast()

    def _observe_pools(self, loop: asyncio.AbstractEventLoop) -> None:
        """Pool events feed the metrics and the master's /readyz (``health`` lines)."""
        databases = self.adapter.databases
        if databases is None:
            return
        from ..metrics.db import PoolEvents, PoolMetrics  # only with a database: asyncpg

        metrics = None
        observer = self.engine_metrics
        if observer is not None:
            metrics = PoolMetrics(observer.writer, self.config.metrics.buckets)
            metrics.watch(loop, databases)
        databases.observer = PoolEvents(metrics, self.report_health)

    def report_health(self, initial: bool = False) -> None:
        """Tell the master whether this worker's pools are connected (a worker whose
        database is down is alive but not ready: /readyz says so)."""
        databases = self.adapter.databases
        if databases is None or self.control is None:
            return
        up = databases.up
        if initial and up:
            return  # the master assumes a new worker healthy
        send_line(self.control, "health", "up" if up else "down")

    def _observer(self) -> EngineObserver | None:
        """What watches the engine: the metrics, and the access log for the requests
        the engine refuses before the middleware sees them; None when nothing does."""
        metrics = self.engine_metrics = self._metrics()
        observers: list[EngineObserver] = [] if metrics is None else [metrics]
        access_logs = [
            member
            for member in chain_members(self.adapter.chain)
            if isinstance(member, AccessLogMiddleware)
        ]
        if access_logs:  # the outermost one: refusals belong to no route
            observers.append(_RefusalsLogged(access_logs[0]))
        if len(observers) > 1:
            return ObserverGroup(observers)
        return observers[0] if observers else None

    def _metrics(self) -> EngineMetrics | None:
        """The metrics observer, when metrics are on and the master made their directory."""
        directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if not self.config.metrics.enabled or not directory:
            return None
        return EngineMetrics(CellWriter(directory, str(os.getpid())), self.config.metrics.buckets)

    def stop(self, timeout: float) -> None:
        """Begin stopping; ``timeout`` bounds how long in-flight requests may take."""
        if self._stop is None:
            return
        if not self._stop.done():
            self._stop.set_result(timeout)
        elif timeout < self._stop.result() and self.server is not None:
            self.server.hurry()  # a fast stop during a graceful one

    # -- signals -------------------------------------------------------------------------

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        graceful = self.config.server.graceful_timeout
        loop.add_signal_handler(signal.SIGTERM, self.stop, graceful)
        loop.add_signal_handler(signal.SIGINT, self.stop, 0.0)
        loop.add_signal_handler(signal.SIGQUIT, self.stop, 0.0)
        loop.add_signal_handler(signal.SIGUSR1, reopen_logs)
        for signum in _MASTER_SIGNALS:
            signal.signal(signum, signal.SIG_IGN)

    # -- the master's channel ------------------------------------------------------------

    def _connect_control(self, loop: asyncio.AbstractEventLoop) -> None:
        control = self.control
        if control is None:
            return
        control.setblocking(False)
        loop.add_reader(control.fileno(), self._on_control)
        send_line(control, "ready")
        self._beat(loop, heartbeat_interval(self.config.server.worker_timeout))

    def _beat(self, loop: asyncio.AbstractEventLoop, interval: float) -> None:
        """Runs on the event loop: if the loop blocks, the master hears nothing."""
        if self._stop is None or self._stop.done() or self.control is None:
            return
        served = self.server.requests_served if self.server is not None else 0
        send_line(self.control, "beat", served)
        now = loop.time()
        if (
            self._max_requests
            and served >= self._max_requests
            and now - self._recycle_asked_at >= RECYCLE_ASK_EVERY
        ):
            # Asked again while still serving: the master may have refused (a reload
            # pending) or the replacement may have failed to boot.
            self._recycle_asked_at = now
            send_line(self.control, "recycle", "max_requests")
        loop.call_later(interval, self._beat, loop, interval)

    def _on_control(self) -> None:
        assert self.control is not None
        try:
            data, fds = recv_with_fds(self.control)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data, fds = b"", []
        if not data:  # the master is gone: nobody will ever stop us otherwise
            error_log.error("lost the master; stopping")
            asyncio.get_running_loop().remove_reader(self.control.fileno())
            self.stop(self.config.server.graceful_timeout)
            return
        for words in self._reader.feed(data):
            self._command(words, fds)
        for fd in fds:
            os.close(fd)

    def _command(self, words: list[str], fds: list[int]) -> None:
        kind, args = words[0], words[1:]
        if kind == "adopt" and args and fds:
            sock = socket.socket(fileno=fds.pop(0))
            sock.setblocking(False)
            self.sockets[int(args[0])] = sock
            if self.server is not None:
                asyncio.get_running_loop().create_task(self.server.add_socket(sock))
            if self.control is not None:
                send_line(self.control, "adopted", args[0])
        elif kind == "retire":
            self.stop(self.config.server.graceful_timeout)
        elif kind == "release" and args:
            released = self.sockets.pop(int(args[0]), None)
            if released is not None and self.server is not None:
                self.server.remove_socket(released)


_dump_files: list[Any] = []  # kept open for faulthandler, which writes to a raw fd


def _dump_file(config: Config) -> Any:
    """Where stack dumps go: the error log file when there is one, else stderr."""
    path = config.logging.error_log_file
    if path is None:
        return sys.stderr
    dump = open(path, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the worker
    _dump_files.append(dump)
    return dump


def _drop_privileges(user: str | None, group: str | None) -> None:
    import grp
    import pwd

    if group is not None:
        gid = grp.getgrnam(group).gr_gid if not group.isdigit() else int(group)
        os.setgroups([])
        os.setgid(gid)
    if user is not None:
        entry = pwd.getpwnam(user) if not user.isdigit() else pwd.getpwuid(int(user))
        if group is None:
            os.setgroups([])
            os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)


def run_worker(
    config: Config,
    sockets: dict[int, socket.socket],
    control: socket.socket | None = None,
    app: Any | None = None,
) -> int:
    """Run one worker in this process until it is told to stop; returns the exit code."""
    # Only the master speaks to systemd (NotifyAccess=all would let an app's library
    # in a worker send state changes in the service's name).
    for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        os.environ.pop(name, None)
    # The master's "your loop is blocked" signal: dump every thread's stack (C-level,
    # so it works while Python is stuck), then the master kills us.
    faulthandler.register(DUMP_SIGNAL, file=_dump_file(config), all_threads=True, chain=False)
    try:
        _drop_privileges(config.server.user, config.server.group)
    except (KeyError, OSError) as exc:
        error_log.error(
            "cannot drop privileges to %s: %s", config.server.user or config.server.group, exc
        )
        return EXIT_BOOT_FAILURE
    if app is None:
        assert config.app is not None
        try:
            app = load_app(config.app, config.app_dir)
        except AppLoadError as exc:
            error_log.error("%s", exc, exc_info=error_log.isEnabledFor(logging.DEBUG))
            return EXIT_BOOT_FAILURE
    try:
        worker = Worker(config, app, sockets, control)
    except AppLoadError as exc:
        error_log.error("%s", exc)
        return EXIT_BOOT_FAILURE
    return uvloop.run(worker.run())
