"""One entry of the ``middleware:`` list, as the worker's pipeline builder receives it.

The config only checks the *name* (a built-in, or an importable ``module:Class``); the
options belong to the middleware, which validates them when the pipeline is built and
can point back at the entry with ``where``.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field

from covetd.config.errors import InvalidValue, show
from covetd.config.importspec import parse_import_spec


@dataclass(frozen=True, slots=True)
class MiddlewareEntry:
    """``name`` (built-in or ``module:Class``), its read-only ``options``, and ``where``
    it was written (``"file:line"``, for the middleware's own error messages).

    ``where`` is provenance, not configuration: it is left out of equality, so a config
    printed and loaded back from another file compares equal.
    """

    name: str
    options: Mapping[str, object]
    where: str = field(default="", compare=False)

    @property
    def builtin(self) -> bool:
        """True unless the name is an import path."""
        return ":" not in self.name


def check_middleware_name(name: str, builtins: tuple[str, ...]) -> str:
    """Return ``name`` if it is a built-in or a well-formed import path."""
    if name in builtins:
        return name
    if ":" in name:
        try:
            return str(parse_import_spec(name, allow_call=False))
        except ValueError as exc:
            raise InvalidValue(f"bad middleware import path {show(name)}: {exc}") from None
    raise InvalidValue(f"unknown middleware {show(name)}{_suggestion(name, builtins)}")


def _suggestion(name: str, builtins: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(name, builtins, n=1)
    if close:
        return f' (did you mean "{close[0]}"?)'
    return f' (built-ins: {", ".join(builtins)}; or write "module:Class")'
