"""Security headers: the browser hardening headers, with defaults that break no app.

Every header is an option; ``null`` leaves it out. A header the app (or an inner
middleware) already set is never overwritten, so a route can loosen or tighten its
own policy. ``Strict-Transport-Security`` is sent only on requests whose scheme is
``https`` (TLS here, or an https hop told by ``proxy_headers``, which must then come
earlier in the chain): browsers ignore it over http (RFC 6797 §7.2).

The default policy asks nothing of an app's own scripts and styles: the CSP only
forbids plugins (``object-src``), foreign ``<base>`` URLs and framing by other origins;
``frame_ancestors`` is added to the CSP unless the policy names its own, and
``X-Frame-Options`` says the same to browsers without CSP level 2.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..app.datastructures import encode_header
from ..app.requests import Request
from ..app.responses import Response
from ..config.errors import InvalidValue
from ..config.fields import setting
from ..config.types import Boolean, Choice, Duration, HeaderValue, Optional
from .base import Handler, Middleware

__all__ = ["SecurityHeadersMiddleware"]

ONE_YEAR = 31536000  # what the HSTS preload list asks for, at least
REFERRER_POLICIES = (
    "no-referrer",
    "no-referrer-when-downgrade",
    "origin",
    "origin-when-cross-origin",
    "same-origin",
    "strict-origin",
    "strict-origin-when-cross-origin",
    "unsafe-url",
)
Header = tuple[bytes, bytes]


class SecurityHeadersMiddleware(Middleware):
    """Add the configured security headers the response does not already have."""

    name = "security_headers"

    @dataclass(frozen=True)
    class Options:
        hsts_max_age: float | None = setting(
            Optional(Duration()),
            ONE_YEAR,
            "Strict-Transport-Security max-age (https only); 0 tells browsers to forget.",
        )
        hsts_include_subdomains: bool = setting(
            Boolean(), False, "Add includeSubDomains: HSTS for every subdomain too."
        )
        hsts_preload: bool = setting(
            Boolean(), False, "Add preload (needs include_subdomains and max_age >= 1 year)."
        )
        content_security_policy: str | None = setting(
            Optional(HeaderValue()),
            "base-uri 'self'; object-src 'none'",
            "Content-Security-Policy (frame_ancestors is added to it).",
        )
        csp_report_only: bool = setting(
            Boolean(), False, "Send the policy as Content-Security-Policy-Report-Only."
        )
        frame_ancestors: str | None = setting(
            Optional(HeaderValue()),
            "'self'",
            "CSP frame-ancestors sources, unless the policy has its own.",
        )
        frame_options: str | None = setting(
            Optional(Choice("DENY", "SAMEORIGIN")), "SAMEORIGIN", "X-Frame-Options."
        )
        content_type_options: str | None = setting(
            Optional(Choice("nosniff")), "nosniff", "X-Content-Type-Options."
        )
        referrer_policy: str | None = setting(
            Optional(Choice(*REFERRER_POLICIES)),
            "strict-origin-when-cross-origin",
            "Referrer-Policy.",
        )
        permissions_policy: str | None = setting(
            Optional(HeaderValue()),
            "camera=(), geolocation=(), microphone=()",
            "Permissions-Policy (apps that use these features loosen it).",
        )
        cross_origin_opener_policy: str | None = setting(
            Optional(
                Choice(
                    "same-origin",
                    "same-origin-allow-popups",
                    "noopener-allow-popups",
                    "unsafe-none",
                )
            ),
            "same-origin",
            "Cross-Origin-Opener-Policy.",
        )
        cross_origin_resource_policy: str | None = setting(
            Optional(Choice("same-origin", "same-site", "cross-origin")),
            "same-origin",
            "Cross-Origin-Resource-Policy.",
        )

        def __post_init__(self) -> None:
            if self.hsts_preload and not (
                self.hsts_include_subdomains
                and self.hsts_max_age is not None
                and self.hsts_max_age >= ONE_YEAR
            ):
                raise InvalidValue(
                    f"preload needs hsts_include_subdomains: true and hsts_max_age >= {ONE_YEAR}",
                    key="hsts_preload",
                )

    options: Options

    def __init__(self, app: Handler, options: Options | None = None) -> None:
        super().__init__(app, options)
        self.headers = always_headers(self.options)
        self.hsts = hsts_header(self.options)
        hsts = [self.hsts] if self.hsts is not None else []
        self.names = frozenset(name for name, _ in [*self.headers, *hsts])

    async def __call__(self, request: Request) -> Response:
        response = await self.app(request)
        raw = response.raw_headers
        names = self.names
        for name, _ in raw:
            if name in names:
                break
        else:  # the usual case: the app set none of them, so all go in, in order
            raw += self.headers
            if self.hsts is not None and request.scheme == "https":
                raw.append(self.hsts)
            return response
        present = {name for name, _ in raw}
        for header in self.headers:
            if header[0] not in present:
                raw.append(header)
        hsts = self.hsts
        if hsts is not None and request.scheme == "https" and hsts[0] not in present:
            raw.append(hsts)
        return response


def always_headers(options: SecurityHeadersMiddleware.Options) -> list[Header]:
    """The headers sent on every response, encoded (and so checked) once."""
    csp_name = (
        "content-security-policy-report-only"
        if options.csp_report_only
        else "content-security-policy"
    )
    values = {
        csp_name: content_security_policy(options),
        "x-frame-options": options.frame_options,
        "x-content-type-options": options.content_type_options,
        "referrer-policy": options.referrer_policy,
        "permissions-policy": options.permissions_policy,
        "cross-origin-opener-policy": options.cross_origin_opener_policy,
        "cross-origin-resource-policy": options.cross_origin_resource_policy,
    }
    return [encode_header(name, value) for name, value in values.items() if value is not None]


def content_security_policy(options: SecurityHeadersMiddleware.Options) -> str | None:
    policy = (options.content_security_policy or "").strip().rstrip(";").strip()
    ancestors = options.frame_ancestors
    if ancestors is None or "frame-ancestors" in directive_names(policy):
        return policy or None
    directive = f"frame-ancestors {ancestors.strip()}"
    return f"{policy}; {directive}" if policy else directive


def directive_names(policy: str) -> set[str]:
    return {part.split()[0].lower() for part in policy.split(";") if part.strip()}


def hsts_header(options: SecurityHeadersMiddleware.Options) -> Header | None:
    if options.hsts_max_age is None:
        return None
    value = f"max-age={int(options.hsts_max_age)}"
    if options.hsts_include_subdomains:
        value += "; includeSubDomains"
    if options.hsts_preload:
        value += "; preload"
    return encode_header("strict-transport-security", value)
