"""Trusted hosts: answer 400 to a request whose Host is not one of ours.

A Host the app never expected poisons absolute URLs the app builds (password-reset
links, redirects, cache keys). Patterns are exact names (``example.com``), a wildcard
for subdomains only (``*.example.com`` matches ``a.example.com``, not
``example.com``), or ``*`` for any. The port is ignored; names compare
case-insensitively, without a trailing dot. With ``www_redirect`` (as in Starlette), a
request for ``example.com`` when only ``www.example.com`` is allowed is redirected
there. Put ``proxy_headers`` first when a proxy forwards the Host.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..app.requests import Request
from ..app.responses import PlainTextResponse, RedirectResponse, Response
from ..config.errors import InvalidValue
from ..config.fields import REQUIRED, setting
from ..config.types import Boolean, ListOf, Pattern
from .base import Handler, Middleware

__all__ = ["TrustedHostMiddleware"]

_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?"
_LABELS = rf"{_LABEL}(?:\.{_LABEL})*"
_HOST_PATTERN = rf"\*|(?:\*\.)?{_LABELS}\.?|\[[0-9A-Fa-f:.]+\]"
# What a Host must look like to be matched at all: a DNS name or an IP literal, then
# digits for the port (the engine lets more through: RFC 3986 reg-name characters).
_AUTHORITY = re.compile(rf"(?P<host>\[[0-9A-Fa-f:.]+\]|{_LABELS}\.?)(?::(?P<port>\d*))?")
MAX_KNOWN = 1024  # allowed Host values remembered


class TrustedHostMiddleware(Middleware):
    """400 unless the Host matches ``allowed_hosts`` (or a www redirect applies)."""

    name = "trusted_host"

    @dataclass(frozen=True)
    class Options:
        allowed_hosts: tuple[str, ...] = setting(
            ListOf(
                Pattern(_HOST_PATTERN, 'a host name, "*.domain" or "*"'),
                'a list of host names, "*.domain" patterns or "*"',
                single_ok=True,
            ),
            REQUIRED,
            'Hosts served: "example.com", "*.example.com" (subdomains) or "*" (any).',
        )
        www_redirect: bool = setting(
            Boolean(),
            True,
            'Redirect (307) a host to its "www." form when only that form is allowed.',
        )

        def __post_init__(self) -> None:
            if "*" in self.allowed_hosts and len(self.allowed_hosts) > 1:
                raise InvalidValue('"*" allows every host: list nothing else', key="allowed_hosts")

    options: Options

    def __init__(self, app: Handler, options: Options | None = None) -> None:
        super().__init__(app, options)
        hosts = [_normalize(host) for host in self.options.allowed_hosts]
        self.allow_any = "*" in hosts
        self.exact = frozenset(host for host in hosts if not host.startswith("*"))
        self.suffixes = tuple(host[1:] for host in hosts if host.startswith("*."))
        # Raw Host values found allowed: a site sees the same few again and again. The
        # verdict depends on the value alone, and only allowed ones are kept, so a
        # client sending made-up hosts fills it at most to MAX_KNOWN and gains nothing.
        self.known: set[bytes] = set()

    async def __call__(self, request: Request) -> Response:
        if self.allow_any:
            return await self.app(request)
        raw = b""
        for name, value in request.raw_headers:  # the first Host, as headers.get
            if name == b"host":
                raw = value
                break
        if raw in self.known:
            return await self.app(request)
        host, port = split_authority(raw.decode("latin-1"))
        if host is not None and self.allowed(host):
            if len(self.known) < MAX_KNOWN:
                self.known.add(raw)
            return await self.app(request)
        if host is not None and self.options.www_redirect and self.allowed("www." + host):
            return _redirect(request, "www." + host, port)
        return PlainTextResponse("Invalid host header", 400)

    def allowed(self, host: str) -> bool:
        return host in self.exact or host.endswith(self.suffixes)


def split_authority(value: str) -> tuple[str | None, str | None]:
    """``"Example.COM.:8000"`` → ``("example.com", "8000")``; ``(None, None)`` for
    anything else (no Host, an empty one, characters no DNS name has)."""
    match = _AUTHORITY.fullmatch(value)
    if match is None:
        return None, None
    return _normalize(match["host"]), match["port"] or None


def _normalize(host: str) -> str:
    return host.lower().removesuffix(".")


def _redirect(request: Request, host: str, port: str | None) -> Response:
    netloc = f"{host}:{port}" if port else host
    target = request.raw_path.decode("latin-1")
    if request.query_string:
        target += "?" + request.query_string.decode("latin-1")
    return RedirectResponse(f"{request.scheme}://{netloc}{target}")
