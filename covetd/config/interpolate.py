"""``${VAR}``, ``${VAR:-default}`` and ``$$`` in string scalars.

``${VAR:-default}`` uses the default when VAR is unset *or empty*, as the shell does;
``$$`` is a literal ``$``; a ``$`` followed by anything else is left alone, so a
password such as ``pa$word`` needs no escaping. A missing variable without a default is
an error rather than an empty string: an empty DSN or secret fails far from its cause.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from covetd.config.errors import InvalidValue

_TOKEN = re.compile(r"\$(?:(?P<dollar>\$)|\{(?P<expr>[^}]*)\}|(?P<open>\{))")
_EXPR = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>.*))?", re.DOTALL)


def has_references(text: str) -> bool:
    """Cheap test before the regex: only text with a ``$`` can change."""
    return "$" in text


def interpolate(text: str, environ: Mapping[str, str]) -> str:
    """Replace every reference in ``text``; raises ``InvalidValue`` for the first bad one."""
    return _TOKEN.sub(lambda match: _replacement(match, environ), text)


def _replacement(match: re.Match[str], environ: Mapping[str, str]) -> str:
    if match["dollar"]:
        return "$"
    if match["open"]:
        raise InvalidValue('"${" is not closed by "}" (write "$$" for a literal "$")')
    expr = _EXPR.fullmatch(match["expr"])
    if expr is None or "${" in (expr["default"] or ""):
        raise InvalidValue(
            f'cannot read "${{{match["expr"]}}}": write ${{NAME}} or ${{NAME:-default}}'
        )
    return _lookup(expr["name"], expr["default"], environ)


def _lookup(name: str, default: str | None, environ: Mapping[str, str]) -> str:
    value = environ.get(name)
    if value is None or (value == "" and default is not None):
        if default is None:
            raise InvalidValue(
                f"environment variable {name} is not set (write ${{{name}:-...}} to give a default)"
            )
        return default
    return value
