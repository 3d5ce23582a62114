"""The two errors of the config package.

``InvalidValue`` is raised by value types and section invariants, which know *what* is
wrong but not *where*; the loader catches it and raises ``ConfigError``, which adds the
origin (file and line, or the command-line flag) and the dotted key. Only ``ConfigError``
leaves the package.
"""

from __future__ import annotations

import json


class ConfigError(Exception):
    """A configuration problem, told in one line: ``ORIGIN[:LINE]: KEY: MESSAGE``.

    ``origin`` is the config file as given, or the command-line flag (``-w/--workers``)
    for an override; ``line`` is 1-based; ``key`` is the dotted path
    (``database.default.dsn``, ``server.bind[1]``). Any of the three may be missing.
    """

    def __init__(
        self,
        message: str,
        *,
        origin: str | None = None,
        line: int | None = None,
        key: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = " ".join(message.split())
        self.origin = origin
        self.line = line
        self.key = key

    @property
    def where(self) -> str | None:
        """``file:line``, ``file`` or the flag: the first part of the one-line message."""
        if self.origin is None or self.line is None:
            return self.origin
        return f"{self.origin}:{self.line}"

    def __str__(self) -> str:
        parts = [part for part in (self.where, self.key) if part]
        return ": ".join([*parts, self.message])


class InvalidValue(ValueError):
    """A value broke a rule; the catcher knows where the value came from.

    ``index`` points into a list value (the loader turns it into ``key[index]`` and the
    item's line); ``key`` names the field a section invariant is about.
    """

    def __init__(self, message: str, *, index: int | None = None, key: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.index = index
        self.key = key


_SHOWN_MAX = 60


def show(value: object) -> str:
    """A value as the user would have written it in YAML, on one bounded line."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    text = json.dumps(value, ensure_ascii=False) if isinstance(value, str) else str(value)
    return text if len(text) <= _SHOWN_MAX else text[: _SHOWN_MAX - 4] + '..."'
