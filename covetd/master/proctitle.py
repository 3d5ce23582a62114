"""Process titles, so ``ps`` and ``top`` tell the master from each worker.

``setproctitle`` is optional: without it titles are simply not set. Nothing here may
fail, since a title is a courtesy to operators and never worth a crash.
"""

from __future__ import annotations

import functools
import importlib
import logging
from collections.abc import Callable

__all__ = ["master_title", "set_title", "worker_title"]

error_log = logging.getLogger("covetd.error")


def master_title(app: str) -> str:
    """``covetd: master [app]``."""
    return f"covetd: master [{app}]"


def worker_title(generation: int, slot: int, app: str) -> str:
    """``covetd: worker [generation G, slot S] [app]``."""
    return f"covetd: worker [generation {generation}, slot {slot}] [{app}]"


def set_title(title: str) -> None:
    """Show ``title`` as this process's command line; a no-op without setproctitle."""
    setter = _setter()
    if setter is None:
        return
    try:
        setter(title)
    except Exception as exc:
        error_log.debug("cannot set the process title: %s", exc)


@functools.cache
def _setter() -> Callable[[str], object] | None:
    """``setproctitle.setproctitle``, imported once; None if absent or broken."""
    try:
        module = importlib.import_module("setproctitle")
    except Exception:
        return None
    setter = getattr(module, "setproctitle", None)
    return setter if callable(setter) else None
