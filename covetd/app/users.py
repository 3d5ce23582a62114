"""Who a request is made by: ``request.user``.

The ``auth`` middleware sets an authenticated ``User`` (from a JWT bearer token or the
session); without it, or without credentials, ``request.user`` is ``ANONYMOUS``. A
handler asks ``request.user.is_authenticated`` and ``request.user.has_scopes("admin")``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = ["ANONYMOUS", "User"]


@dataclass(frozen=True, slots=True)
class User:
    """An identity: ``subject`` (the JWT ``sub``, or the session's user id; None for the
    anonymous user), its granted ``scopes``, the verified ``claims`` and the ``source``
    that authenticated it (``"jwt"``, ``"session"`` or ``"anonymous"``)."""

    subject: str | None
    scopes: frozenset[str] = frozenset()
    claims: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    source: str = "anonymous"

    @property
    def is_authenticated(self) -> bool:
        return self.subject is not None

    @property
    def display_name(self) -> str:
        """The subject, or "" (Starlette's ``BaseUser``, for ASGI apps behind ``auth``)."""
        return self.subject or ""

    @property
    def identity(self) -> str:
        """The subject, or "" (Starlette's ``BaseUser``)."""
        return self.subject or ""

    def has_scopes(self, *scopes: str) -> bool:
        """True when the user was granted every one of ``scopes``."""
        return self.scopes.issuperset(scopes)


ANONYMOUS = User(None)
"""The user of a request that carried no (valid) credentials."""
