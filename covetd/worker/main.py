"""One worker's life: load the app, start it up, serve, drain, shut it down, exit.

Exit codes (named, gunicorn-style, so a supervisor can tell a crash from a boot
failure): 0 stopped normally, 3 the app failed to load or start.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import uvloop

from ..app.application import Covet
from ..config import Config, TlsConfig
from ..engine.asgi import AsgiLifespan, AsgiRunner, LifespanFailure
from ..engine.native import NativeRunner
from ..engine.server import HttpServer, Runner
from .appload import AppLoadError, load_app

__all__ = ["EXIT_BOOT_FAILURE", "EXIT_OK", "Worker", "serve"]

error_log = logging.getLogger("covetd.error")

EXIT_OK = 0
EXIT_BOOT_FAILURE = 3


class _AppAdapter:
    """What the worker needs from any app: a runner, a startup and a shutdown."""

    def __init__(self, app: Any) -> None:
        self.runner: Runner
        self.startup: Callable[[], Awaitable[None]]
        self.shutdown: Callable[[], Awaitable[None]]
        if isinstance(app, Covet):
            self.runner = NativeRunner(app.handle)
            self.startup, self.shutdown = app.startup, app.shutdown
        elif callable(app):
            lifespan = AsgiLifespan(app)
            self.runner = AsgiRunner(app, lifespan.state)
            self.startup, self.shutdown = lifespan.startup, lifespan.shutdown
        else:
            raise AppLoadError(
                f"{type(app).__name__} object is neither a Covet app nor an ASGI app"
            )


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


class Worker:
    """Serves ``app`` on ``sockets`` until TERM (graceful) or INT/QUIT (fast)."""

    def __init__(self, config: Config, app: Any, sockets: list[socket.socket]) -> None:
        self.config = config
        self.adapter = _AppAdapter(app)
        self.sockets = sockets
        self._stop: asyncio.Future[float] | None = None

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        self._stop = loop.create_future()
        graceful = self.config.server.graceful_timeout
        for signum, timeout in (
            (signal.SIGTERM, graceful),
            (signal.SIGINT, 0.0),
            (signal.SIGQUIT, 0.0),
        ):
            loop.add_signal_handler(signum, self.stop, timeout)
        try:
            await self.adapter.startup()
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
        server = HttpServer(
            self.adapter.runner, self.config.http, ssl_context=tls_context(self.config.tls)
        )
        await server.start(self.sockets)
        error_log.info(
            "serving %s on %s", self.config.app, ", ".join(str(b) for b in self.config.server.bind)
        )
        timeout = await self._stop
        await server.shutdown(timeout)
        try:
            await self.adapter.shutdown()
        except Exception:
            error_log.exception("application shutdown failed")
        return EXIT_OK

    def stop(self, timeout: float) -> None:
        """Begin stopping; ``timeout`` bounds how long in-flight requests may take."""
        if self._stop is not None and not self._stop.done():
            self._stop.set_result(timeout)


def serve(config: Config, sockets: list[socket.socket], app: Any | None = None) -> int:
    """Run one worker in this process until it is told to stop; returns the exit code."""
    if app is None:
        assert config.app is not None
        try:
            app = load_app(config.app, config.app_dir)
        except AppLoadError as exc:
            error_log.error("%s", exc, exc_info=error_log.isEnabledFor(logging.DEBUG))
            return EXIT_BOOT_FAILURE
    try:
        worker = Worker(config, app, sockets)
    except AppLoadError as exc:
        error_log.error("%s", exc)
        return EXIT_BOOT_FAILURE
    return uvloop.run(worker.run())
