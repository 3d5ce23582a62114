"""The master: binds the listening sockets and runs the workers."""

from __future__ import annotations

import logging

from ..config import Config
from ..logs import configure_logging
from ..worker.main import EXIT_BOOT_FAILURE, serve
from .sockets import BindError, bind_all

__all__ = ["run"]

error_log = logging.getLogger("covetd.error")


def run(config: Config) -> int:
    """Bind, then serve in this process (one worker); returns the exit code."""
    configure_logging(config.logging.level, config.logging.format)
    try:
        sockets = bind_all(
            config.server.bind,
            backlog=config.server.backlog,
            unix_mode=config.server.unix_socket_mode,
        )
    except BindError as exc:
        error_log.error("%s", exc)
        return EXIT_BOOT_FAILURE
    try:
        return serve(config, sockets)
    finally:
        for sock in sockets:
            sock.close()
