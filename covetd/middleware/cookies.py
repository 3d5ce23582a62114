"""Cookies a middleware sets (the session, the CSRF token): attributes from the config,
a size limit, and no broken header ever sent.

Every attribute was validated when the config was read (``option_types``), and
``Response.set_cookie`` passes the header through ``encode_header``; a value that
would still not fit (over ``max_size``, or refused by the encoder) is logged and
dropped: the client keeps its previous cookie, which is better than a truncated one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal, cast

from ..app.responses import Response

__all__ = ["CookieSpec"]

error_log = logging.getLogger("covetd.error")

SameSite = Literal["lax", "strict", "none"]


@dataclass(frozen=True, slots=True)
class CookieSpec:
    """How one cookie is written (RFC 6265 attributes)."""

    name: str
    path: str = "/"
    domain: str | None = None
    secure: bool = True
    http_only: bool = True
    same_site: str | None = "lax"
    max_age: int | None = None
    max_size: int = 4093

    def write(self, response: Response, value: str) -> bool:
        """Add ``Set-Cookie``; False (and an error log) when it was refused."""
        return self._append(response, value, self.max_age)

    def delete(self, response: Response) -> bool:
        """Add a ``Set-Cookie`` that expires the cookie now (same scope and flags, so
        ``__Host-``/``SameSite=None`` cookies can be removed too)."""
        return self._append(response, "", 0, expires=0)

    def _append(
        self, response: Response, value: str, max_age: int | None, expires: int | None = None
    ) -> bool:
        before = len(response.raw_headers)
        try:
            response.set_cookie(
                self.name,
                value,
                max_age=max_age,
                expires=expires,
                path=self.path,
                domain=self.domain,
                secure=self.secure,
                httponly=self.http_only,
                samesite=cast(SameSite | None, self.same_site),
            )
        except ValueError as exc:
            error_log.error("cookie %r not set: %s", self.name, exc)
            return False
        size = len(response.raw_headers[-1][1])
        if size > self.max_size:
            del response.raw_headers[before:]
            error_log.error(
                "cookie %r not set: %d bytes exceeds max_size %d (the data is too large "
                "for a cookie; keep less in it or use a server-side store)",
                self.name,
                size,
                self.max_size,
            )
            return False
        return True
