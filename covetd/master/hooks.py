"""Server hooks: the operator's own functions, called at points of the server's life.

Each hook is a ``module:callable`` from the ``hooks:`` config section, imported once
when the master starts, so a typo fails the start (with one line naming the hook and
the spec) instead of the first reload. Running a hook is the opposite: whatever the
hook raises is logged and swallowed, because a broken hook must never take the server
down. Hooks are plain functions called synchronously; ``info`` objects they receive
are passed through untouched.

| hook             | runs in    | called with |
|------------------|------------|-------------|
| on_starting      | the master | the Config, before binding |
| on_reload        | the master | the new Config, on SIGHUP |
| worker_started   | a worker   | the worker's info, before its app loads |
| worker_exited    | the master | the exited worker's info |
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping
from typing import Literal, get_args

from ..config.importspec import parse_import_spec
from ..config.schema import HooksConfig
from ..worker.appload import AppLoadError, load_app

__all__ = ["HOOK_NAMES", "HookError", "HookName", "Hooks"]

HookName = Literal["on_starting", "on_reload", "worker_started", "worker_exited"]
HOOK_NAMES: tuple[HookName, ...] = get_args(HookName)

Hook = Callable[..., object]

error_log = logging.getLogger("covetd.error")


class HookError(Exception):
    """A hook could not be imported or is not a function (one line: hook name and spec)."""


class Hooks:
    """The configured hooks, imported; ``run(name, *args)`` calls one if it is set."""

    def __init__(self, hooks: Mapping[HookName, tuple[str, Hook]] | None = None) -> None:
        """``hooks`` maps a hook name to its spec (for messages) and the callable."""
        self._hooks = dict(hooks or {})
        for name in self._hooks:
            _check_name(name)

    @classmethod
    def load(cls, config: HooksConfig, app_dir: str | None) -> Hooks:
        """Import every configured hook, with ``app_dir`` first on ``sys.path`` as for the app.

        Raises ``HookError`` for the first hook that cannot be imported or called.
        """
        hooks: dict[HookName, tuple[str, Hook]] = {}
        for name in HOOK_NAMES:
            spec: str | None = getattr(config, name)
            if spec is not None:
                hooks[name] = (spec, _import_hook(name, spec, app_dir))
        return cls(hooks)

    def __contains__(self, name: object) -> bool:
        return name in self._hooks

    def run(self, name: HookName, *args: object) -> None:
        """Call hook ``name`` with ``args`` if configured; log and swallow what it raises.

        ``SystemExit`` and ``KeyboardInterrupt`` pass through: a hook that exits the
        process means it.
        """
        _check_name(name)
        entry = self._hooks.get(name)
        if entry is None:
            return
        spec, hook = entry
        try:
            result = hook(*args)
        except Exception:
            error_log.exception("hook %s (%s) failed", name, spec)
            return
        if inspect.isawaitable(result):
            _close_if_coroutine(result)
            error_log.error(
                "hook %s (%s) returned an awaitable; hooks must not be async", name, spec
            )


def _import_hook(name: HookName, spec: str, app_dir: str | None) -> Hook:
    where = f"hook {name} ({spec})"
    try:
        parse_import_spec(spec.strip(), allow_call=False)
        hook = load_app(spec.strip(), app_dir)
    except ValueError as exc:
        raise HookError(f'{where}: expected "module:callable" ({exc})') from None
    except AppLoadError as exc:
        raise HookError(f"{where}: {exc}") from exc
    if not callable(hook):
        raise HookError(f"{where}: not callable (it is of type {type(hook).__name__})")
    if inspect.iscoroutinefunction(hook):
        raise HookError(f"{where}: is an async function; hooks are called synchronously")
    return hook


def _check_name(name: str) -> None:
    if name not in HOOK_NAMES:
        raise ValueError(f"unknown hook {name!r}; hooks are {', '.join(HOOK_NAMES)}")


def _close_if_coroutine(value: object) -> None:
    """Close an un-awaited coroutine so Python does not warn about it."""
    if inspect.iscoroutine(value):
        value.close()
