"""``load_config``: a YAML file (or none), the environment and CLI overrides -> ``Config``.

The walk follows the schema: each mapping is checked against its section's declared
fields (unknown keys get a "did you mean"), each value is read from its node and parsed
by its setting's type, and each section is built so that its invariants run. The first
problem stops the walk with a one-line ``ConfigError`` naming file, line and key.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

import yaml

from covetd.config.errors import ConfigError, InvalidValue, show
from covetd.config.fields import (
    MiddlewareList,
    Section,
    SectionMap,
    Setting,
    Spec,
    field_specs,
    join_key,
)
from covetd.config.middleware import MiddlewareEntry, check_middleware_name
from covetd.config.nodes import Document, is_null, kind_of, line_of
from covetd.config.overrides import apply_overrides
from covetd.config.schema import Config
from covetd.config.types import freeze


def load_config(
    path: str | None,
    overrides: Mapping[str, object] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Read, validate and resolve the configuration.

    ``path=None`` means defaults only. ``overrides`` maps dotted keys to command-line
    values (strings are read like unquoted YAML) and wins over the file; errors in them
    name the flag. ``environ`` (default ``os.environ``) feeds ``${VAR}`` references.
    Raises ``ConfigError``.
    """
    environment = os.environ if environ is None else environ
    config = Config() if path is None else read_config_file(path, environment)
    return apply_overrides(config, overrides or {})


def read_config_file(path: str, environ: Mapping[str, str]) -> Config:
    """The file's settings over the defaults, without overrides."""
    root = compose_file(path)
    if root is None:
        return Config(source=path)
    config: Config = _SchemaReader(Document(path, environ)).section(Config, root, "")
    return dataclasses.replace(config, source=path)


def compose_file(path: str) -> yaml.Node | None:
    """Parse the file into a node tree (None if it holds no document)."""
    try:
        with open(path, encoding="utf-8") as stream:
            text = stream.read()
    except OSError as exc:
        raise ConfigError(f"cannot read the config file: {exc.strerror}", origin=path) from None
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise ConfigError("the file is not UTF-8 text", origin=path, line=line) from None
    try:
        node: yaml.Node | None = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise _syntax_error(exc, text, path) from None
    return node


def _syntax_error(exc: yaml.YAMLError, text: str, path: str) -> ConfigError:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        words = ", ".join(part for part in (exc.context, exc.problem) if part)
        return ConfigError(f"invalid YAML: {words}", origin=path, line=line)
    if isinstance(exc, yaml.reader.ReaderError):
        line = text[: exc.position].count("\n") + 1
        code = ord(exc.character) if isinstance(exc.character, str) else exc.character
        message = f"invalid YAML: unacceptable character #x{code:04x}: {exc.reason}"
        return ConfigError(message, origin=path, line=line)
    return ConfigError(f"invalid YAML: {exc}", origin=path)


class _SchemaReader:
    """Walks the node tree along the schema; one method per kind of field."""

    def __init__(self, document: Document) -> None:
        self.doc = document

    def section(self, cls: type[Any], node: yaml.Node, path: str) -> Any:
        entries = self.doc.entries(node, path)
        specs = dict(field_specs(cls))
        values: dict[str, object] = {}
        for name, entry in entries.items():
            key = join_key(path, name)
            if name not in specs:
                raise self.doc.error(entry.key, key, unknown_key_message(name, cls, path))
            values[name] = self.field(specs[name], entry.value, key)
        self._check_required(specs, values, node, path)
        try:
            return cls(**values)
        except InvalidValue as exc:
            blamed = entries.get(exc.key or "")
            target = blamed.value if blamed else node
            raise self.doc.error(target, join_key(path, exc.key or ""), exc.message) from None

    def field(self, spec: Spec, node: yaml.Node, key: str) -> object:
        if isinstance(spec, Setting):
            return self.setting(spec, node, key)
        if isinstance(spec, Section):
            return self.section(spec.cls, node, key)
        if isinstance(spec, SectionMap):
            return self.section_map(spec, node, key)
        return self.middleware(spec, node, key)

    def setting(self, spec: Setting, node: yaml.Node, key: str) -> object:
        value = self.doc.value(node, key, text=spec.type.reads_text)
        try:
            return spec.type.parse(value)
        except InvalidValue as exc:
            if exc.index is not None and isinstance(node, yaml.SequenceNode):
                node, key = node.value[exc.index], f"{key}[{exc.index}]"
            raise self.doc.error(node, key, exc.message) from None

    def section_map(self, spec: SectionMap, node: yaml.Node, path: str) -> Mapping[str, Any]:
        sections: dict[str, Any] = {}
        for name, entry in self.doc.entries(node, path).items():
            key = join_key(path, name)
            if not name.isidentifier():
                message = f"a {spec.name_doc} must be an identifier (letters, digits and _)"
                raise self.doc.error(entry.key, key, message)
            sections[name] = self.section(spec.cls, entry.value, key)
        return MappingProxyType(sections)

    def middleware(
        self, spec: MiddlewareList, node: yaml.Node, path: str
    ) -> tuple[MiddlewareEntry, ...]:
        if is_null(node):
            return ()
        if not isinstance(node, yaml.SequenceNode):
            raise self.doc.error(node, path, f"expected a list of middleware, got {kind_of(node)}")
        return tuple(
            self._middleware_entry(spec, item, f"{path}[{index}]")
            for index, item in enumerate(node.value)
        )

    def _middleware_entry(
        self, spec: MiddlewareList, node: yaml.Node, path: str
    ) -> MiddlewareEntry:
        if not isinstance(node, yaml.MappingNode) or len(node.value) != 1:
            raise self.doc.error(node, path, self._entry_shape_problem(node, path))
        [(name, entry)] = self.doc.entries(node, path).items()
        try:
            name = check_middleware_name(name, spec.builtins)
        except InvalidValue as exc:
            raise self.doc.error(entry.key, path, exc.message) from None
        options = self.doc.value(entry.value, join_key(path, name), text=False)
        if options is None:
            options = {}
        if not isinstance(options, dict):
            message = f"options must be a mapping or null, got {show(options)}"
            raise self.doc.error(entry.value, join_key(path, name), message)
        where = f"{self.doc.origin}:{line_of(entry.key)}"
        return MiddlewareEntry(name, freeze(options), where=where)

    def _entry_shape_problem(self, node: yaml.Node, path: str) -> str:
        expected = 'expected a mapping with one key, the middleware name, as in "- gzip: {}"'
        if isinstance(node, yaml.MappingNode):
            return f"{expected}, got {len(node.value)} keys"
        return f"{expected}, got {show(self.doc.value(node, path, text=False))}"

    def _check_required(
        self, specs: dict[str, Spec], values: dict[str, object], node: yaml.Node, path: str
    ) -> None:
        for name, spec in specs.items():
            if isinstance(spec, Setting) and spec.required and name not in values:
                raise self.doc.error(node, join_key(path, name), "required key is missing")


def unknown_key_message(name: str, cls: type[Any], path: str) -> str:
    """``unknown key`` plus the likeliest intended key: a near spelling in the same
    section, else the same name in another section (``workers`` -> ``server.workers``)."""
    known = [field_name for field_name, _ in field_specs(cls)]
    close = difflib.get_close_matches(name, known, n=1)
    if close:
        return f'unknown key (did you mean "{close[0]}"?)'
    here = join_key(path, name)
    elsewhere = [key for key in _all_keys(Config) if key.rpartition(".")[2] == name and key != here]
    if elsewhere:
        return f'unknown key (did you mean "{elsewhere[0]}"?)'
    return f"unknown key (expected one of: {', '.join(known)})"


def _all_keys(cls: type[Any], prefix: str = "") -> Iterator[str]:
    """Dotted keys of every setting and section reachable through fixed sections."""
    for name, spec in field_specs(cls):
        key = join_key(prefix, name)
        yield key
        if isinstance(spec, Section):
            yield from _all_keys(spec.cls, key)
