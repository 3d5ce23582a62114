"""CORS: let pages from other origins call this app, as the Fetch standard describes.

A request with an ``Origin`` header is a CORS request. A preflight (``OPTIONS`` with
``Access-Control-Request-Method``) is answered here and never reaches the app: 200 when
the origin, the method and every requested header are allowed, else 400 (as Starlette).
Any other CORS request goes to the app, and its response gets the
``Access-Control-Allow-*`` headers when the origin is allowed (none when it is not: the
browser then withholds the response from the page).

Safety choices, checked when the chain is built:

- ``allow_origins: ["*"]`` with ``allow_credentials: true`` is refused: it would let every
  site read every user's data. (Starlette echoes the origin instead, which does exactly
  that.) List the origins, or use ``allow_origin_regex``.
- ``expose_headers: ["*"]`` with credentials is refused: browsers take ``*`` literally
  for credentialed requests. ``allow_methods``/``allow_headers`` ``"*"`` work with
  credentials, because the preflight answer echoes what was asked for.

``Vary: Origin`` is added to every response whose CORS headers would differ for another
origin, and to responses to requests without ``Origin`` (no CORS header is added to
those), so an HTTP cache never serves one origin's answer to another (Fetch §3.2.5).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..app.requests import Request
from ..app.responses import PlainTextResponse, Response
from ..config.errors import InvalidValue, show
from ..config.fields import setting
from ..config.types import Boolean, Duration, ListOf, Optional, Pattern, Text
from .base import Handler, Middleware
from .vary import add_vary

__all__ = ["CORSMiddleware"]

# Request headers a browser sends without asking (Fetch: CORS-safelisted request headers).
SAFELISTED_HEADERS = frozenset({"accept", "accept-language", "content-language", "content-type"})
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_TOKEN_RE = re.compile(_TOKEN)
# Origins no configuration means to trust: a reserved name (RFC 2606) and sandboxes.
_UNOWNED_ORIGINS = ("https://covetd-probe.invalid", "http://covetd-probe.invalid", "null")
_ORIGIN = r"[A-Za-z][A-Za-z0-9+.-]*://(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~%-]+)(?::\d{1,5})?"


class Regex(Text):
    """A regular expression, checked by compiling it."""

    def __init__(self) -> None:
        super().__init__("a regular expression")

    def parse(self, value: object) -> str:
        text = super().parse(value)
        try:
            re.compile(text)
        except re.error as exc:
            raise InvalidValue(f"invalid regular expression {show(text)}: {exc}") from None
        return text


def _tokens(noun: str) -> ListOf[str]:
    item = Pattern(rf"\*|{_TOKEN}", f'a {noun} or "*"')
    return ListOf(item, f'a list of {noun}s or "*"', single_ok=True, nonempty=False)


class CORSMiddleware(Middleware):
    """Answer preflights; add CORS headers to the responses of allowed origins."""

    name = "cors"

    @dataclass(frozen=True)
    class Options:
        allow_origins: tuple[str, ...] = setting(
            ListOf(
                Pattern(rf"\*|{_ORIGIN}", 'an origin ("https://example.com", no path) or "*"'),
                'a list of origins or "*"',
                single_ok=True,
                nonempty=False,
            ),
            [],
            'Origins allowed ("https://example.com"); "*" for any (not with credentials).',
        )
        allow_origin_regex: str | None = setting(
            Optional(Regex()),
            None,
            r'Also allow origins matching this whole regex ("https://.*\.example\.com").',
        )
        allow_methods: tuple[str, ...] = setting(
            _tokens("method"),
            ["GET"],
            'Methods a preflight may ask for (case-sensitive); "*": any.',
        )
        allow_headers: tuple[str, ...] = setting(
            _tokens("header name"),
            [],
            'Request headers a preflight may ask for (besides safelisted ones); "*": any.',
        )
        allow_credentials: bool = setting(
            Boolean(), False, "Let pages send cookies and credentials (Allow-Credentials)."
        )
        expose_headers: tuple[str, ...] = setting(
            _tokens("header name"), [], "Response headers pages may read (Expose-Headers)."
        )
        max_age: float = setting(
            Duration(), 600, "How long browsers may cache a preflight answer (Max-Age)."
        )

        def __post_init__(self) -> None:
            for key in ("allow_origins", "allow_methods", "allow_headers", "expose_headers"):
                values = getattr(self, key)
                if "*" in values and len(values) > 1:
                    raise InvalidValue('"*" allows everything: list nothing else', key=key)
            if self.allow_credentials and "*" in self.allow_origins:
                raise InvalidValue(
                    'allow_origins "*" with allow_credentials would let any site act for '
                    "your users: list the origins (or use allow_origin_regex)",
                    key="allow_origins",
                )
            if self.allow_credentials and _matches_anything(self.allow_origin_regex):
                raise InvalidValue(
                    "allow_origin_regex matches origins nobody owns, and allow_credentials "
                    "would let them act for your users: anchor it to your domains",
                    key="allow_origin_regex",
                )
            if self.allow_credentials and "*" in self.expose_headers:
                raise InvalidValue(
                    'expose_headers "*" is not a wildcard for credentialed requests: '
                    "list the headers",
                    key="expose_headers",
                )

    options: Options

    def __init__(self, app: Handler, options: Options | None = None) -> None:
        super().__init__(app, options)
        opts = self.options
        self.allow_all_origins = "*" in opts.allow_origins
        self.origins = frozenset(origin.lower() for origin in opts.allow_origins)
        self.origin_regex = re.compile(opts.allow_origin_regex) if opts.allow_origin_regex else None
        self.any_method = "*" in opts.allow_methods
        self.methods = frozenset(opts.allow_methods)  # case-sensitive, as in HTTP
        self.any_header = "*" in opts.allow_headers
        self.allowed_headers = SAFELISTED_HEADERS | {name.lower() for name in opts.allow_headers}
        self.credentials = opts.allow_credentials
        self.expose = ", ".join(opts.expose_headers)
        self.max_age = str(int(opts.max_age))

    async def __call__(self, request: Request) -> Response:
        origin = None
        for name, value in request.raw_headers:  # the first Origin, as headers.get
            if name == b"origin":
                origin = value.decode("latin-1")
                break
        if origin is None:  # not a CORS request: nothing to add but Vary
            response = await self.app(request)
            add_vary(response.raw_headers, b"Origin")
            return response
        if request.method == "OPTIONS" and "access-control-request-method" in request.headers:
            return self.preflight(request, origin)
        response = await self.app(request)
        self.allow(response, origin)
        return response

    def origin_allowed(self, origin: str) -> bool:
        if self.allow_all_origins or origin in self.origins:
            return True
        return self.origin_regex is not None and self.origin_regex.fullmatch(origin) is not None

    def allow(self, response: Response, origin: str) -> None:
        """Add the CORS headers of an allowed origin's (non-preflight) response."""
        if not self.origin_allowed(origin):
            add_vary(response.raw_headers, b"Origin")
            return
        headers = response.headers
        if self.allow_all_origins:
            headers["access-control-allow-origin"] = "*"
        else:
            headers["access-control-allow-origin"] = origin
            add_vary(response.raw_headers, b"Origin")
        if self.credentials:
            headers["access-control-allow-credentials"] = "true"
        if self.expose:
            headers["access-control-expose-headers"] = self.expose

    def preflight(self, request: Request, origin: str) -> Response:
        method = request.headers["access-control-request-method"].strip()
        requested = _requested_headers(request)
        failures = []
        if not self.origin_allowed(origin):
            failures.append("origin")
        if not _TOKEN_RE.fullmatch(method) or not (self.any_method or method in self.methods):
            failures.append("method")
        if not all(_TOKEN_RE.fullmatch(name) for name in requested) or not (
            self.any_header or all(name in self.allowed_headers for name in requested)
        ):
            failures.append("headers")
        vary = {} if self.allow_all_origins else {"vary": "Origin"}
        if failures:
            return PlainTextResponse(f"Disallowed CORS {', '.join(failures)}", 400, vary)
        answer = {
            "access-control-allow-origin": "*" if self.allow_all_origins else origin,
            "access-control-allow-methods": method
            if self.any_method
            else ", ".join(self.options.allow_methods),
            "access-control-max-age": self.max_age,
            **vary,
        }
        if requested:
            answer["access-control-allow-headers"] = ", ".join(requested)
        if self.credentials:
            answer["access-control-allow-credentials"] = "true"
        return PlainTextResponse("OK", 200, answer)


def _matches_anything(regex: str | None) -> bool:
    """Whether ``regex`` lets through origins no one configured on purpose."""
    if regex is None:
        return False
    compiled = re.compile(regex)
    return any(compiled.fullmatch(origin) for origin in _UNOWNED_ORIGINS)


def _requested_headers(request: Request) -> list[str]:
    """``Access-Control-Request-Headers`` as lowercase names (malformed ones are kept:
    they fail the check)."""
    values = request.headers.getlist("access-control-request-headers")
    return [name.strip().lower() for name in ",".join(values).split(",") if name.strip()]
