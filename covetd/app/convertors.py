"""Typed path parameters: ``{id:int}``, ``{x:float}``, ``{s:str}``, ``{u:uuid}``,
``{flag:bool}`` and ``{p:path}`` (the rest of the path, slashes included).

A convertor turns one path segment into a value or raises ``ValueError``; the router
then tries the next candidate. ``priority`` orders candidates at the same position:
the most specific type is tried first, ``str`` last.
"""

from __future__ import annotations

import re
import uuid
from typing import Any, ClassVar

__all__ = ["CONVERTORS", "Convertor"]


class Convertor:
    name: ClassVar[str]
    priority: ClassVar[int]
    matches_rest: ClassVar[bool] = False

    def convert(self, segment: str) -> Any:
        raise NotImplementedError

    def to_string(self, value: Any) -> str:
        return str(value)


class IntConvertor(Convertor):
    name = "int"
    priority = 0

    def convert(self, segment: str) -> int:
        if not (segment.isascii() and segment.isdigit()):
            raise ValueError(segment)
        return int(segment)


class FloatConvertor(Convertor):
    name = "float"
    priority = 1
    _pattern = re.compile(r"[0-9]+(\.[0-9]+)?")

    def convert(self, segment: str) -> float:
        if not self._pattern.fullmatch(segment):
            raise ValueError(segment)
        return float(segment)


class UUIDConvertor(Convertor):
    name = "uuid"
    priority = 2
    _pattern = re.compile(
        r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    )

    def convert(self, segment: str) -> uuid.UUID:
        if not self._pattern.fullmatch(segment):
            raise ValueError(segment)
        return uuid.UUID(segment)


class BoolConvertor(Convertor):
    name = "bool"
    priority = 3
    _values: ClassVar[dict[str, bool]] = {
        "true": True,
        "1": True,
        "yes": True,
        "on": True,
        "false": False,
        "0": False,
        "no": False,
        "off": False,
    }

    def convert(self, segment: str) -> bool:
        value = self._values.get(segment.lower())
        if value is None:
            raise ValueError(segment)
        return value

    def to_string(self, value: Any) -> str:
        return "true" if value else "false"


class StrConvertor(Convertor):
    name = "str"
    priority = 9

    def convert(self, segment: str) -> str:
        if not segment:
            raise ValueError(segment)
        return segment


class PathConvertor(Convertor):
    """The rest of the path; may be empty, may contain slashes."""

    name = "path"
    priority = 10
    matches_rest = True

    def convert(self, segment: str) -> str:
        return segment


CONVERTORS: dict[str, Convertor] = {
    c.name: c()
    for c in (
        IntConvertor,
        FloatConvertor,
        UUIDConvertor,
        BoolConvertor,
        StrConvertor,
        PathConvertor,
    )
}
