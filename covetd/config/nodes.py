"""YAML nodes -> plain values, keeping lines for messages.

The file is *composed* (not loaded) with PyYAML's SafeLoader, so every node knows its
line. This module turns nodes into plain Python values on demand, which is where three
rules live:

- ``${ENV}`` is replaced in string scalars, then a *plain* (unquoted) scalar is typed
  by YAML's usual rules as if the value had been written in the file
  (``workers: ${WORKERS:-2}`` gives the int 2); a quoted one stays a string.
- A caller that wants text (``text=True``) gets a scalar's text as written, except
  that a plain ``null``/``~``/empty scalar is still None.
- Mapping keys are strings and appear once; ``<<`` merge keys are honoured, and keys
  written in the mapping override merged ones, as YAML specifies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.resolver import Resolver

from covetd.config.errors import ConfigError, InvalidValue
from covetd.config.interpolate import has_references, interpolate

YAML_TAG_PREFIX = "tag:yaml.org,2002:"
STR_TAG = "tag:yaml.org,2002:str"
NULL_TAG = "tag:yaml.org,2002:null"
MERGE_TAG = "tag:yaml.org,2002:merge"
_IMPLICIT = (True, False)
_RESOLVER = Resolver()


@dataclass(frozen=True, slots=True)
class Entry:
    """One ``key: value`` pair of a mapping node."""

    key: yaml.Node
    value: yaml.Node


def plain_scalar(text: str, *, text_wanted: bool) -> object:
    """Type ``text`` as an unquoted YAML scalar would be (CLI values use this too)."""
    # types-PyYAML leaves Resolver.resolve untyped; it returns the tag string.
    tag: str = _RESOLVER.resolve(yaml.ScalarNode, text, _IMPLICIT)  # type: ignore[no-untyped-call]
    if tag == NULL_TAG:
        return None
    if text_wanted or tag == STR_TAG:
        return text
    return SafeConstructor().construct_object(yaml.ScalarNode(tag, text))


def line_of(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def is_null(node: yaml.Node | None) -> bool:
    return node is None or (isinstance(node, yaml.ScalarNode) and node.tag == NULL_TAG)


def kind_of(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return "a scalar"


class Document:
    """One composed file: reads nodes into values and builds located errors."""

    def __init__(self, origin: str, environ: Mapping[str, str]) -> None:
        self.origin = origin
        self.environ = environ
        self._constructor = SafeConstructor()

    def error(self, node: yaml.Node, key: str | None, message: str) -> ConfigError:
        return ConfigError(message, origin=self.origin, line=line_of(node), key=key or None)

    def entries(
        self, node: yaml.Node, path: str, merging: frozenset[int] = frozenset()
    ) -> dict[str, Entry]:
        """The pairs of a mapping node by key, in file order; null counts as empty.

        ``merging`` holds the mappings whose ``<<`` is being expanded, to stop a cycle.
        """
        if is_null(node):
            return {}
        if not isinstance(node, yaml.MappingNode):
            where = "" if path else " at the top level"
            raise self.error(node, path, f"expected a mapping{where}, got {kind_of(node)}")
        if id(node) in merging:
            raise self.error(node, path, "a YAML merge (<<) includes itself")
        own: dict[str, Entry] = {}
        merged: dict[str, Entry] = {}
        for key_node, value_node in node.value:
            if key_node.tag == MERGE_TAG:
                self._merge_into(merged, value_node, path, merging | {id(node)})
            else:
                self._add_entry(own, key_node, value_node, path)
        return {**merged, **own} if merged else own

    def value(self, node: yaml.Node, path: str, *, text: bool) -> object:
        """The plain value of a node: scalars, lists and dicts all the way down."""
        return self._value(node, path, text, frozenset())

    def _value(self, node: yaml.Node, path: str, text: bool, seen: frozenset[int]) -> object:
        if id(node) in seen:
            raise self.error(node, path, "a YAML alias refers to itself")
        seen = seen | {id(node)}
        if isinstance(node, yaml.SequenceNode):
            return [
                self._value(item, f"{path}[{index}]", text, seen)
                for index, item in enumerate(node.value)
            ]
        if isinstance(node, yaml.MappingNode):
            return {
                key: self._value(entry.value, _join(path, key), text, seen)
                for key, entry in self.entries(node, path).items()
            }
        return self._scalar(node, path, text)

    def _scalar(self, node: yaml.Node, path: str, text: bool) -> object:
        plain = getattr(node, "style", None) is None
        if node.tag == STR_TAG and has_references(node.value):
            try:
                value = interpolate(node.value, self.environ)
            except InvalidValue as exc:
                raise self.error(node, path, exc.message) from None
            return plain_scalar(value, text_wanted=text) if plain else value
        if text and node.tag.startswith(YAML_TAG_PREFIX) and (node.tag == STR_TAG or plain):
            return None if node.tag == NULL_TAG else node.value
        try:
            return self._constructor.construct_object(node, deep=True)
        except ConstructorError as exc:
            raise self.error(node, path, f"cannot read this value: {exc.problem}") from None

    def _add_entry(
        self, entries: dict[str, Entry], key_node: yaml.Node, value_node: yaml.Node, path: str
    ) -> None:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != STR_TAG:
            raise self.error(key_node, path, "keys must be strings")
        key = key_node.value
        if key in entries:
            first = line_of(entries[key].key)
            message = f"duplicate key (first set on line {first})"
            raise self.error(key_node, _join(path, key), message)
        entries[key] = Entry(key_node, value_node)

    def _merge_into(
        self, merged: dict[str, Entry], node: yaml.Node, path: str, merging: frozenset[int]
    ) -> None:
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        for source in sources:
            if not isinstance(source, yaml.MappingNode):
                raise self.error(source, path, "<< must merge a mapping or a list of mappings")
            for key, entry in self.entries(source, path, merging).items():
                merged.setdefault(key, entry)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
