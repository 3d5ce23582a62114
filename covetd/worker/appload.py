"""Import the application named by ``module:attr`` or ``module:factory()``.

Every failure is an ``AppLoadError`` whose message is one line naming the module, and
whose ``__cause__`` is the original exception, so ``--log-level debug`` can show the
traceback of what the app's own code did. A missing module is told apart from a
missing *dependency* of the module: the fix for each is different.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import os
import sys
from types import ModuleType

from covetd.config.importspec import ImportSpec, parse_import_spec


class AppLoadError(Exception):
    """The application could not be imported, found or built (one-line message)."""


def load_app(spec: str, app_dir: str | None) -> object:
    """Return the application object ``spec`` names.

    ``app_dir`` (made absolute) goes first on ``sys.path``, once, as uvicorn and gunicorn
    do; None leaves ``sys.path`` alone. A spec ending in ``()`` names a factory, which is
    called without arguments and must return the app.
    """
    parsed = _parse(spec)
    if app_dir is not None:
        put_first_on_path(app_dir)
    module = _import(parsed.module)
    target = _resolve(module, parsed)
    return _call_factory(target, parsed) if parsed.call else target


def put_first_on_path(directory: str) -> None:
    """Make ``directory`` (absolute) ``sys.path[0]``, without listing it twice."""
    path = os.path.abspath(directory)
    if sys.path[:1] == [path]:
        return
    while path in sys.path:
        sys.path.remove(path)
    sys.path.insert(0, path)


def _parse(spec: str) -> ImportSpec:
    try:
        return parse_import_spec(spec.strip(), allow_call=True)
    except ValueError as exc:
        raise AppLoadError(
            f'invalid application "{spec}": expected "module:attr" or "module:factory()" ({exc})'
        ) from None


def _import(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if _is_the_module_asked_for(exc.name, name):
            raise AppLoadError(f"no module named '{exc.name}'") from exc
        raise _import_failure(name, exc) from exc
    except Exception as exc:
        raise _import_failure(name, exc) from exc


def _is_the_module_asked_for(missing: str | None, name: str) -> bool:
    """``pkg`` or ``pkg.app`` missing when ``pkg.app`` was asked for, not a dependency."""
    return missing is not None and (name == missing or name.startswith(missing + "."))


def _import_failure(name: str, exc: BaseException) -> AppLoadError:
    return AppLoadError(f"error while importing '{name}': {_describe(exc)}")


def _resolve(module: ModuleType, spec: ImportSpec) -> object:
    target: object = module
    owner = f"module '{spec.module}'"
    walked = f"{spec.module}:"
    for part in spec.attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            hint = _did_you_mean(part, dir(target))
            raise AppLoadError(f"{owner} has no attribute '{part}'{hint}") from None
        walked += part
        owner, walked = f"'{walked}'", walked + "."
    return target


def _call_factory(factory: object, spec: ImportSpec) -> object:
    name = str(spec)
    if not callable(factory):
        kind = type(factory).__name__
        raise AppLoadError(f"{name}: '{spec.attr}' is not callable (it is of type {kind})")
    try:
        app = factory()
    except Exception as exc:
        raise AppLoadError(f"error while calling factory {name}: {_describe(exc)}") from exc
    if inspect.isawaitable(app):
        _close_if_coroutine(app)
        raise AppLoadError(f"factory {name} returned an awaitable; it must return the app")
    if app is None:
        raise AppLoadError(f"factory {name} returned None; it must return the app")
    return app


def _close_if_coroutine(value: object) -> None:
    """Close an un-awaited coroutine so Python does not warn about it."""
    if inspect.iscoroutine(value):
        value.close()


def _describe(exc: BaseException) -> str:
    message = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _did_you_mean(name: str, candidates: list[str]) -> str:
    public = [candidate for candidate in candidates if not candidate.startswith("_")]
    close = difflib.get_close_matches(name, public, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""
