"""Value types that several built-in middleware declare their options with.

They follow ``covetd.config.types`` (parse or raise ``InvalidValue``; ``dump`` back to
YAML data) and accept what the pipeline hands over: options arrive frozen, so a YAML
mapping is a read-only ``Mapping`` and a list a tuple.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, TypeVar

from ..config.errors import InvalidValue, show
from ..config.types import ListOf, Pattern, Text, ValueType

__all__ = [
    "CookieDomain",
    "CookieName",
    "CookiePath",
    "MappingOf",
    "PathPatterns",
    "Secret",
    "matches_any",
]

T = TypeVar("T")
_PATH_PATTERN = re.compile(r"/\S*")


class MappingOf(ValueType[Mapping[str, T]]):
    """A mapping of keys (path patterns with ``paths=True``) to ``inner`` values,
    read-only and in the order written (YAML mappings keep their order)."""

    def __init__(self, inner: ValueType[T], description: str, *, paths: bool = False) -> None:
        self.inner = inner
        self.description = description
        self.paths = paths

    def parse(self, value: object) -> Mapping[str, T]:
        if not isinstance(value, Mapping):
            self.fail(value)
        parsed: dict[str, T] = {}
        for key, item in value.items():
            if not isinstance(key, str) or not key.strip():
                raise InvalidValue(f"expected non-blank keys, got {show(key)}")
            if self.paths and not _PATH_PATTERN.fullmatch(key):
                raise InvalidValue(f'{show(key)}: a path pattern starts with "/"')
            try:
                parsed[key] = self.inner.parse(item)
            except InvalidValue as exc:
                raise InvalidValue(f"{show(key)}: {exc.message}") from None
        return MappingProxyType(parsed)

    def dump(self, value: Mapping[str, T]) -> object:
        return {key: self.inner.dump(item) for key, item in value.items()}


class Secret(Text):
    """A secret: at least ``minimum`` characters (write it as ``"${ENV_VAR}"``)."""

    def __init__(self, minimum: int = 32) -> None:
        super().__init__(f"a secret of at least {minimum} characters")
        self.minimum = minimum

    def parse(self, value: object) -> str:
        text = super().parse(value)
        if len(text.encode("utf-8")) < self.minimum:
            raise InvalidValue(
                f"too short: a secret needs at least {self.minimum} characters "
                "(generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
        return text


class PathPatterns(ListOf[str]):
    """Path patterns as the pipeline's ``include``/``exclude`` read them (fnmatch: ``*``
    matches anything, ``/`` included)."""

    def __init__(self) -> None:
        pattern = Pattern(_PATH_PATTERN.pattern, 'a path pattern starting with "/" ("/api/*")')
        super().__init__(pattern, "a list of path patterns", single_ok=True, nonempty=False)


def matches_any(path: str, patterns: tuple[str, ...] | Any) -> bool:
    return any(fnmatch.fnmatchcase(path, pattern) for pattern in patterns)


# RFC 6265 §4.1.1: cookie-name is a token; path-value is any CHAR except CTLs or ";".
class CookieName(Pattern):
    def __init__(self) -> None:
        super().__init__(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+", "a cookie name (an RFC 9110 token)")


class CookiePath(Pattern):
    def __init__(self) -> None:
        super().__init__(r"/[\x21-\x3a\x3c-\x7e]*", 'a cookie path ("/", "/app"; no ";")')


class CookieDomain(Pattern):
    def __init__(self) -> None:
        label = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
        super().__init__(rf"\.?{label}(?:\.{label})*", 'a domain name ("example.com")')
