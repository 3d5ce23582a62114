"""Validate a middleware's options (from YAML or keyword arguments) against its
``Options`` dataclass, with the config file's rules and one-line errors."""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from typing import Any

from ..config.errors import ConfigError, InvalidValue
from ..config.fields import REQUIRED, Setting, field_specs

__all__ = ["parse_options"]

# Keys every entry may carry; the pipeline uses them, the middleware never sees them.
PIPELINE_KEYS = ("include", "exclude")


def parse_options(cls: type[Any], values: Mapping[str, object], name: str, where: str = "") -> Any:
    """``cls(**parsed values)``; raises ``ConfigError`` naming ``where`` and the key."""
    specs = {key: spec for key, spec in field_specs(cls) if isinstance(spec, Setting)}
    parsed: dict[str, object] = {}
    for key, value in values.items():
        if key in PIPELINE_KEYS:
            continue
        spec = specs.get(key)
        if spec is None:
            raise _error(where, name, key, _unknown(key, list(specs)))
        try:
            parsed[key] = spec.type.parse(value)
        except InvalidValue as exc:
            raise _error(where, name, key, exc.message) from None
    for key, spec in specs.items():
        if key not in parsed and spec.default is REQUIRED:
            raise _error(where, name, key, "required")
    try:
        return cls(**parsed)
    except InvalidValue as exc:
        raise _error(where, name, exc.key or "", exc.message) from None
    except (TypeError, ValueError) as exc:
        raise _error(where, name, "", str(exc)) from None


def _unknown(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    if close:
        return f'unknown option (did you mean "{close[0]}"?)'
    return f"unknown option (options: {', '.join(known) or 'none'})"


def _error(where: str, name: str, key: str, message: str) -> ConfigError:
    path = f"middleware.{name}" + (f".{key}" if key else "")
    origin, _, line = where.rpartition(":")
    if origin and line.isdigit():
        return ConfigError(message, origin=origin, line=int(line), key=path)
    return ConfigError(message, origin=where or None, key=path)


def option_defaults(cls: type[Any]) -> dict[str, object]:
    """Field name → default, for docs."""
    return {f.name: f.default for f in dataclasses.fields(cls)}
