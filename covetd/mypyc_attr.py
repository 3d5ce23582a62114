"""``mypyc_attr``, the class decorator that tells the native build
(``setup.py``) how to compile a class; a no-op where mypy is not installed."""

from __future__ import annotations

from typing import Any

__all__ = ["mypyc_attr"]

try:
    from mypy_extensions import mypyc_attr
except ImportError:  # a pure-Python install: the decorator only informs mypyc

    def mypyc_attr(*_args: Any, **_kwargs: Any) -> Any:  # type: ignore[misc]
        return lambda cls: cls
