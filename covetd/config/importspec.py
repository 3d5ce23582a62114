"""The ``module:attr`` grammar shared by ``app``, the hooks and custom middleware.

Kept apart from both the config types and the app loader so that the config can reject
a malformed spec at load time with exactly the rule the loader applies at import time.
"""

from __future__ import annotations

from dataclasses import dataclass

from covetd.config.errors import show

CALL_SUFFIX = "()"


@dataclass(frozen=True, slots=True)
class ImportSpec:
    """``module:attr`` (an object), or ``module:attr()`` (a factory to call)."""

    module: str
    attr: str
    call: bool = False

    def __str__(self) -> str:
        return f"{self.module}:{self.attr}{CALL_SUFFIX if self.call else ''}"


def parse_import_spec(text: str, *, allow_call: bool) -> ImportSpec:
    """Split and check a spec; raises ``ValueError`` saying what is malformed."""
    call = allow_call and text.endswith(CALL_SUFFIX)
    body = text.removesuffix(CALL_SUFFIX) if call else text
    module, colon, attr = body.partition(":")
    if not colon:
        raise ValueError("missing ':' between the module and the attribute")
    if not _is_dotted_name(module):
        raise ValueError(f"{show(module)} is not a module path")
    if not _is_dotted_name(attr):
        raise ValueError(f"{show(attr)} is not an attribute name")
    return ImportSpec(module, attr, call)


def _is_dotted_name(text: str) -> bool:
    return all(part.isidentifier() for part in text.split("."))
