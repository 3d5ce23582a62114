"""How a setting is declared once: a dataclass field that carries its own spec.

``schema.py`` writes each setting as a field of its section dataclass::

    workers: int = setting(Workers(), 2, "Worker processes.", flag=Flag("-w/--workers", "N"))

The field's name is the YAML key, its annotation the resolved Python type, and the
``Setting`` in its metadata holds the value type, the YAML-shaped default, the CLI flag
and the doc line. The loader, the overrides, ``to_dict`` and the docs generator all read
the specs back with ``field_specs``, so nothing is listed twice (gunicorn's habit, kept
statically typed).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from covetd.config.types import ValueType

SPEC_KEY: Final = "covetd.config"


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Final = _Required()
"""The default of a setting that has none: the key must be written."""


@dataclass(frozen=True, slots=True)
class Flag:
    """A command-line spelling: ``"-b/--bind"`` for an option, ``"APP"`` for a positional."""

    spelling: str
    metavar: str
    repeat: bool = False

    @property
    def positional(self) -> bool:
        return not self.spelling.startswith("-")

    @property
    def names(self) -> list[str]:
        return self.spelling.split("/")

    def __str__(self) -> str:
        return self.spelling


@dataclass(frozen=True, slots=True)
class Setting:
    """One key: ``default`` is written as in YAML (``"64KiB"``) and resolved by ``type``.

    ``default_doc`` replaces the default in the docs when it depends on the platform;
    ``secret`` masks the value in ``--print-config``.
    """

    type: ValueType[Any]
    default: object
    doc: str
    flag: Flag | None = None
    default_doc: str | None = None
    secret: Callable[[str], str] | None = None

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


@dataclass(frozen=True, slots=True)
class Section:
    """A nested mapping of settings, read into the dataclass ``cls``."""

    cls: type[Any]
    doc: str


@dataclass(frozen=True, slots=True)
class SectionMap:
    """A mapping of user-chosen names (identifiers) to sections of one kind."""

    cls: type[Any]
    doc: str
    name_doc: str


@dataclass(frozen=True, slots=True)
class MiddlewareList:
    """The ordered middleware list; ``builtins`` are the names usable without an import."""

    builtins: tuple[str, ...]
    doc: str


Spec = Setting | Section | SectionMap | MiddlewareList


def setting(
    type_: ValueType[Any],
    default: object,
    doc: str,
    *,
    flag: Flag | None = None,
    default_doc: str | None = None,
    secret: Callable[[str], str] | None = None,
) -> Any:
    """Declare a setting as a dataclass field (see the module docstring)."""
    spec = Setting(type_, default, doc, flag, default_doc, secret)
    metadata = {SPEC_KEY: spec}
    if spec.required:
        return dataclasses.field(metadata=metadata)
    value = type_.parse(default)
    if _is_hashable(value):
        return dataclasses.field(default=value, metadata=metadata)
    return dataclasses.field(default_factory=lambda: value, metadata=metadata)


def section(cls: type[Any]) -> Any:
    """Declare a nested section field; its doc is the class docstring, its default the
    section's own defaults."""
    spec = Section(cls, " ".join((cls.__doc__ or "").split()))
    return dataclasses.field(default_factory=cls, metadata={SPEC_KEY: spec})


def section_map(cls: type[Any], doc: str, *, name_doc: str) -> Any:
    """Declare a ``name -> section`` field, empty by default."""
    spec = SectionMap(cls, doc, name_doc)
    return dataclasses.field(default_factory=_empty_mapping, metadata={SPEC_KEY: spec})


def middleware_list(builtins: tuple[str, ...], doc: str) -> Any:
    """Declare the middleware list field, empty by default."""
    return dataclasses.field(default=(), metadata={SPEC_KEY: MiddlewareList(builtins, doc)})


def field_specs(cls: type[Any]) -> list[tuple[str, Spec]]:
    """The declared fields of a section class, in declaration (= YAML and docs) order."""
    return [
        (field.name, field.metadata[SPEC_KEY])
        for field in dataclasses.fields(cls)
        if SPEC_KEY in field.metadata
    ]


def iter_settings(cls: type[Any], prefix: str = "") -> Iterator[tuple[str, Setting]]:
    """Every setting reachable through fixed sections, with its dotted key."""
    for name, spec in field_specs(cls):
        key = join_key(prefix, name)
        if isinstance(spec, Setting):
            yield key, spec
        elif isinstance(spec, Section):
            yield from iter_settings(spec.cls, key)


def join_key(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _empty_mapping() -> Mapping[str, Any]:
    return MappingProxyType({})


def _is_hashable(value: object) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True
