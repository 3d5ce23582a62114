"""``csrf``: refuse cross-site POST/PUT/PATCH/DELETE with 403.

An unsafe request passes only if

1. its ``Origin`` (else its ``Referer``) is this site's own origin (the request's
   scheme and ``Host``) or one of ``trusted_origins``; over HTTPS a request with
   neither header is refused, as Django does (browsers send one of them); and
2. it carries the CSRF token in the ``X-CSRF-Token`` header or the ``csrf_token``
   field of an urlencoded form body, matching the secret that the client cannot be
   made to forge:
   - ``synchronizer`` mode (default): a random secret kept in the session (put
     ``sessions`` before ``csrf``); a token of another session never matches;
   - ``double_submit`` mode: a random secret in a cookie, echoed by the page (no
     session needed). Name the cookie ``__Host-csrftoken`` (with ``cookie_secure``)
     so a sibling subdomain cannot plant one.

Handlers get the token with ``csrf_token(request)`` (for a form field or a meta tag);
it is masked afresh on every call (a random one-time pad, so a compressed page never
repeats it: BREACH), and the secret is created on first use only, so a site that
never asks for a token never sets a cookie for it. Safe methods and ``exempt`` paths
pass unchecked.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..app.exceptions import HTTPException
from ..app.requests import Request
from ..app.responses import PlainTextResponse, Response
from ..config.errors import InvalidValue
from ..config.fields import setting
from ..config.types import Boolean, Choice, Duration, ListOf, Optional, Pattern, Text
from .base import Middleware
from .cookies import CookieSpec
from .option_types import CookieDomain, CookieName, CookiePath, PathPatterns, matches_any
from .signing import b64decode, b64encode

__all__ = ["CSRFMiddleware", "csrf_token"]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
SECRET_BYTES = 32
_DEFAULT_PORTS = {"http": 80, "https": 443}
FORM_TYPES = ("application/x-www-form-urlencoded",)
CONTEXT_ATTRIBUTE = "_csrf"  # on request.state


class CSRFContext:
    """What ``csrf_token`` needs, made by its first call in a request (the middleware
    leaves itself on ``request.state``: most requests never ask for a token)."""

    __slots__ = ("issued", "middleware", "request", "secret")

    def __init__(self, middleware: CSRFMiddleware, request: Request) -> None:
        self.middleware = middleware
        self.request = request
        self.secret: bytes | None = None
        self.issued = False

    def token(self) -> str:
        if self.secret is None:
            self.secret = self.middleware.stored_secret(self.request)
        if self.secret is None:
            self.secret = secrets.token_bytes(SECRET_BYTES)
            self.issued = True
            self.middleware.store_secret(self.request, self.secret)
        return mask(self.secret)


def csrf_token(request: Request) -> str:
    """A CSRF token for ``request``'s client: put it in a form's ``csrf_token`` field or
    send it in the ``X-CSRF-Token`` header. Needs the ``csrf`` middleware."""
    state = request.state
    context = getattr(state, CONTEXT_ATTRIBUTE, None)
    if isinstance(context, CSRFMiddleware):  # the first token of this request
        context = CSRFContext(context, request)
        setattr(state, CONTEXT_ATTRIBUTE, context)
    if not isinstance(context, CSRFContext):
        raise RuntimeError("CSRFMiddleware is not installed: add '- csrf: {...}' to middleware")
    return context.token()


def mask(secret: bytes) -> str:
    pad = secrets.token_bytes(len(secret))
    return b64encode(pad + bytes(a ^ b for a, b in zip(pad, secret, strict=True)))


def unmask(token: str) -> bytes | None:
    """The secret inside a token (masked, or the bare secret a script copied from the
    cookie); None when it is not one."""
    bare = decode_secret(token)
    if bare is not None:
        return bare
    try:
        raw = b64decode(token)
    except ValueError:
        return None
    if len(raw) != 2 * SECRET_BYTES:
        return None
    pad, masked = raw[:SECRET_BYTES], raw[SECRET_BYTES:]
    return bytes(a ^ b for a, b in zip(pad, masked, strict=True))


def decode_secret(text: str) -> bytes | None:
    """A stored secret (base64url of ``SECRET_BYTES`` bytes), or None."""
    try:
        raw = b64decode(text)
    except ValueError:
        return None
    return raw if len(raw) == SECRET_BYTES else None


class Origin(Pattern):
    """``scheme://host[:port]``, or ``scheme://*.domain`` for every subdomain."""

    def __init__(self) -> None:
        super().__init__(
            r"https?://(\*\.)?[A-Za-z0-9.\-\[\]:]+", 'an origin ("https://example.com")'
        )


def origin_of(url: str) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` of a URL or origin, default port filled in."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme]


class CSRFMiddleware(Middleware):
    """Token and origin checks for unsafe methods (see the module docstring)."""

    name = "csrf"

    @dataclass(frozen=True)
    class Options:
        mode: str = setting(
            Choice("synchronizer", "double_submit"),
            "synchronizer",
            "synchronizer: secret in the session; double_submit: secret in a cookie.",
        )
        header_name: str = setting(Text(), "X-CSRF-Token", "Request header carrying the token.")
        form_field: str = setting(Text(), "csrf_token", "Urlencoded form field carrying it.")
        trusted_origins: tuple[str, ...] = setting(
            ListOf(Origin(), "a list of origins", nonempty=False),
            [],
            'Other origins allowed to post: ["https://app.example.com", "https://*.example.com"].',
        )
        check_origin: bool = setting(Boolean(), True, "Check Origin/Referer against the host.")
        exempt: tuple[str, ...] = setting(
            PathPatterns(), [], 'Paths never checked ("/webhooks/*"); guard them otherwise.'
        )
        session_key: str = setting(Text(), "_csrf", "Session key of the secret (synchronizer).")
        cookie_name: str = setting(
            CookieName(), "csrftoken", "Cookie of the secret (double_submit)."
        )
        cookie_path: str = setting(CookiePath(), "/", "Its Path attribute.")
        cookie_domain: str | None = setting(Optional(CookieDomain()), None, "Its Domain.")
        cookie_secure: bool = setting(Boolean(), True, "Its Secure attribute.")
        cookie_http_only: bool = setting(
            Boolean(), False, "Its HttpOnly attribute (false: scripts can echo it)."
        )
        cookie_same_site: str = setting(
            Choice("lax", "strict", "none"), "strict", "Its SameSite attribute."
        )
        cookie_max_age: float | None = setting(
            Optional(Duration(positive=True)), None, "Its lifetime; null: the browser session."
        )

        def __post_init__(self) -> None:
            if self.cookie_same_site == "none" and not self.cookie_secure:
                raise InvalidValue("SameSite=None needs cookie_secure", key="cookie_secure")
            host_only = self.cookie_secure and not self.cookie_domain and self.cookie_path == "/"
            if self.cookie_name.startswith("__Host-") and not host_only:
                raise InvalidValue(
                    "a __Host- cookie needs cookie_secure, no domain and path /",
                    key="cookie_name",
                )

    def __init__(self, app: Any, options: Any = None) -> None:
        super().__init__(app, options)
        opts: CSRFMiddleware.Options = self.options
        self.synchronizer = opts.mode == "synchronizer"
        self.trusted = [origin.lower() for origin in opts.trusted_origins]
        self.exempt = opts.exempt
        self.cookie = CookieSpec(
            opts.cookie_name,
            path=opts.cookie_path,
            domain=opts.cookie_domain,
            secure=opts.cookie_secure,
            http_only=opts.cookie_http_only,
            same_site=opts.cookie_same_site,
            max_age=int(opts.cookie_max_age) if opts.cookie_max_age is not None else None,
        )

    async def __call__(self, request: Request) -> Response:
        state = request.state
        setattr(state, CONTEXT_ATTRIBUTE, self)  # csrf_token() turns it into a CSRFContext
        if request.method not in SAFE_METHODS and not matches_any(request.path, self.exempt):
            problem = await self.problem(request)
            if problem is not None:
                return PlainTextResponse(f"CSRF check failed: {problem}\n", 403)
        response = await self.app(request)
        if not self.synchronizer:  # a secret made in this request goes out in its cookie
            context = getattr(state, CONTEXT_ATTRIBUTE, None)
            if isinstance(context, CSRFContext) and context.middleware is self and context.issued:
                assert context.secret is not None
                self.cookie.write(response, b64encode(context.secret))
        return response

    # -- the secret ------------------------------------------------------------------

    def stored_secret(self, request: Request) -> bytes | None:
        if self.synchronizer:
            value = request.session.get(self.options.session_key)
        else:
            value = request.cookies.get(self.cookie.name)
        return decode_secret(value) if isinstance(value, str) else None

    def store_secret(self, request: Request, secret: bytes) -> None:
        if self.synchronizer:
            request.session[self.options.session_key] = b64encode(secret)

    # -- the checks ------------------------------------------------------------------

    async def problem(self, request: Request) -> str | None:
        """Why ``request`` must be refused, or None."""
        if self.options.check_origin:
            problem = self.origin_problem(request)
            if problem is not None:
                return problem
        return await self.token_problem(request)

    def origin_problem(self, request: Request) -> str | None:
        origin = request.headers.get("origin")
        if origin is not None:
            return None if self.allowed(request, origin) else "Origin is not allowed"
        referer = request.headers.get("referer")
        if referer is not None:
            return None if self.allowed(request, referer) else "Referer is not allowed"
        if request.scheme == "https":
            return "Origin and Referer are missing"
        return None

    def allowed(self, request: Request, url: str) -> bool:
        given = origin_of(url)
        if given is None:
            return False  # "null", garbage, or another scheme
        if given == origin_of(f"{request.scheme}://{request.headers.get('host', '')}"):
            return True
        return any(_trusted(given, origin) for origin in self.trusted)

    async def token_problem(self, request: Request) -> str | None:
        expected = self.stored_secret(request)
        if expected is None:
            return "no CSRF secret yet (load a page that uses csrf_token first)"
        presented = request.headers.get(self.options.header_name) or await self.form_token(request)
        if not presented:
            return "the CSRF token is missing"
        secret = unmask(presented)
        if secret is None or not hmac.compare_digest(secret, expected):
            return "the CSRF token is wrong"
        return None

    async def form_token(self, request: Request) -> str | None:
        if request.content_type not in FORM_TYPES:
            return None
        try:
            form = await request.form()  # cached: the handler can read it again
        except HTTPException:
            return None
        value = form.get(self.options.form_field)
        return value if isinstance(value, str) else None


def _trusted(given: tuple[str, str, int], trusted: str) -> bool:
    scheme, _, host = trusted.partition("://")
    if host.startswith("*."):
        wanted = origin_of(f"{scheme}://{host[2:]}")
        return (
            wanted is not None
            and given[0] == wanted[0]
            and given[2] == wanted[2]
            and given[1].endswith("." + wanted[1])
        )
    return given == origin_of(trusted)
