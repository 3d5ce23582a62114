"""The master: binds the listening sockets and runs the workers (``arbiter.py``)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..config import Config
from ..logs import configure_logging
from ..worker.appload import AppLoadError
from ..worker.main import EXIT_BOOT_FAILURE
from .arbiter import Arbiter
from .hooks import HookError
from .pidfile import PidfileError
from .sockets import BindError
from .systemd import SocketActivationError, listen_fds

__all__ = ["run"]

error_log = logging.getLogger("covetd.error")


def run(config: Config, reload: Callable[[], Config] | None = None) -> int:
    """Serve ``config`` until stopped; ``reload`` re-reads it on HUP. Returns the exit code."""
    configure_logging(
        config.logging.level, config.logging.format, path=config.logging.error_log_file
    )
    try:
        activated = [(f"systemd:{item.name}", item.sock) for item in listen_fds()]
        arbiter = Arbiter(config, reload or (lambda: config))
        return arbiter.run(activated or None)
    except (BindError, PidfileError, HookError, SocketActivationError, AppLoadError) as exc:
        error_log.error("%s", exc)
        return EXIT_BOOT_FAILURE
