"""Command-line overrides: dotted keys -> values, applied over the loaded ``Config``.

A string value is read exactly as an unquoted YAML scalar would be (``-w 4`` is the int
4, ``-w auto`` the string), then parsed by the setting's own type, so a flag is checked
by the very rule that checks the file; errors name the flag (``-w/--workers: ...``).
Applying goes through ``dataclasses.replace``, so section invariants run again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from covetd.config.errors import ConfigError, InvalidValue
from covetd.config.fields import Setting, iter_settings
from covetd.config.nodes import plain_scalar
from covetd.config.schema import Config

C = TypeVar("C")


def apply_overrides(config: Config, overrides: Mapping[str, object]) -> Config:
    """``config`` with each override applied in turn; raises ``ConfigError``."""
    settings = dict(iter_settings(Config))
    for key, value in overrides.items():
        if key not in settings:
            raise ValueError(f"no setting {key!r} to override")
        config = _apply(config, key, settings[key], value)
    return config


def _apply(config: Config, key: str, spec: Setting, value: object) -> Config:
    origin = str(spec.flag) if spec.flag else key
    try:
        parsed = spec.type.parse(as_yaml(value, text_wanted=spec.type.reads_text))
        return replace_at(config, key.split("."), parsed)
    except InvalidValue as exc:
        raise ConfigError(exc.message, origin=origin) from None


def as_yaml(value: object, *, text_wanted: bool) -> object:
    """Strings (and lists of strings) typed as plain YAML scalars; others unchanged."""
    if isinstance(value, str):
        return plain_scalar(value, text_wanted=text_wanted)
    if isinstance(value, Sequence):
        return [as_yaml(item, text_wanted=text_wanted) for item in value]
    return value


def replace_at(obj: C, names: list[str], value: object) -> C:
    """A copy of the nested dataclass ``obj`` with the field at ``names`` replaced."""
    head, *rest = names
    new: Any = replace_at(getattr(obj, head), rest, value) if rest else value
    return dataclasses.replace(obj, **{head: new})  # type: ignore[type-var]
