"""``auth``: ``request.user`` from a JWT bearer token or the session; route protection.

Bearer tokens (PyJWT): the token's ``alg`` must be in ``algorithms`` (``none`` can
never be listed), and its key comes from the configuration *by algorithm family*:
HS* verify with ``secret`` only; RS*/PS*/ES*/EdDSA with ``public_key(_file)`` or the
``jwks_file`` key named by ``kid``, of the matching key type. So a token cannot pick
its own key: an HS256 token "signed" with the RSA public key is checked against the
HMAC secret and fails (the HS/RS confusion attack). ``exp`` and ``iat`` (and ``sub``)
are required by default, ``nbf`` is checked when present, ``audience``/``issuer`` when
configured, all with ``leeway``. A bad token is answered 401 with
``WWW-Authenticate: Bearer error="invalid_token"`` on any path: a client with broken
credentials is told so rather than silently served as anonymous.

Session auth (``session_key``): ``request.session[session_key]`` holds the subject, or
``{"sub": ..., "scopes": [...]}``. Put ``sessions`` (and ``csrf``!) before ``auth``.

Protection: ``protect`` maps path patterns to the scopes they need (every matching
pattern applies, so a broad pattern cannot weaken a narrow one); ``[]`` means "any
authenticated user". In a Covet app, ``@requires("scope")`` protects one handler.
Anonymous: 401 with a ``Bearer`` challenge; missing scope: 403
``error="insufficient_scope"``.
"""

from __future__ import annotations

import asyncio
import fnmatch
import functools
import importlib.util
import inspect
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar

from ..app.exceptions import HTTPException
from ..app.requests import Request
from ..app.responses import JSONResponse, Response
from ..app.users import ANONYMOUS, User
from ..config.errors import InvalidValue
from ..config.fields import setting
from ..config.types import Choice, Duration, ExistingFile, ListOf, Optional, Size, Text
from .base import Middleware
from .option_types import MappingOf, Secret

if TYPE_CHECKING:
    from jwt.types import Options as DecodeOptions

__all__ = ["AuthMiddleware", "requires"]

F = TypeVar("F", bound=Callable[..., Any])

HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")
RSA_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
EC_ALGORITHMS = ("ES256", "ES384", "ES512")
ALGORITHMS = (*HMAC_ALGORITHMS, *RSA_ALGORITHMS, *EC_ALGORITHMS, "EdDSA")
_HMAC_MINIMUM = {"HS256": 32, "HS384": 48, "HS512": 64}  # RFC 7518 §3.2: key >= hash size


class AuthError(Exception):
    """A bearer token was refused; the message is safe to send (a fixed phrase)."""


# --- challenges (RFC 6750 §3) -------------------------------------------------------------


def challenge(error: str | None = None, description: str | None = None, **extra: str) -> str:
    params = {"error": error, "error_description": description, **extra}
    quoted = ", ".join(f'{name}="{value}"' for name, value in params.items() if value)
    return f"Bearer {quoted}" if quoted else "Bearer"


def refusal(user: User, needed: frozenset[str]) -> tuple[int, str, str] | None:
    """``(status, detail, WWW-Authenticate)`` when ``user`` may not pass, else None."""
    if not user.is_authenticated:
        return 401, "Not authenticated", challenge()
    missing = needed - user.scopes
    if missing:
        scope = " ".join(sorted(needed))
        return 403, "Insufficient scope", challenge("insufficient_scope", scope=scope)
    return None


# --- @requires ------------------------------------------------------------------------------


def requires(*scopes: str) -> Callable[[F], F]:
    """Protect a Covet handler: its caller must be authenticated and hold ``scopes``.

    ::

        @app.get("/admin")
        @requires("admin")          # below the route decorator
        async def admin(request): ...

    The handler is wrapped, and the check runs when the handler is called, after
    routing, against ``request.user``: it holds whatever the middleware order, and
    without the ``auth`` middleware every caller is anonymous, so the route refuses
    (401) instead of opening up. Sync handlers still run in the thread pool; path
    parameters reach the handler as before. Write it *below* ``@app.get(...)``: above
    it, the router keeps the unwrapped function. (ASGI apps: use ``protect``.)
    """
    needed = frozenset(scopes)

    def decorate(endpoint: F) -> F:
        return _guard(endpoint, needed)  # type: ignore[return-value]

    return decorate


def _guard(endpoint: Callable[..., Any], needed: frozenset[str]) -> Callable[..., Any]:
    call = _caller(endpoint)

    async def guarded(request: Request, /, **path_params: Any) -> Any:
        refused = refusal(request.user, needed)
        if refused is not None:
            status, detail, header = refused
            raise HTTPException(status, detail, {"WWW-Authenticate": header})
        return await call(request, path_params)

    functools.update_wrapper(guarded, endpoint)
    # The router reads this signature: always (request, **path parameters).
    signature = inspect.Signature(
        [
            inspect.Parameter("_request", inspect.Parameter.POSITIONAL_ONLY),
            inspect.Parameter("path_params", inspect.Parameter.VAR_KEYWORD),
        ]
    )
    setattr(guarded, "__signature__", signature)  # noqa: B010
    setattr(guarded, "__covetd_requires__", needed)  # noqa: B010
    return guarded


def _caller(endpoint: Callable[..., Any]) -> Callable[[Request, dict[str, Any]], Any]:
    """Call ``endpoint`` as the router would call it unwrapped: the request first if it
    has a parameter that is not a path parameter, the path parameters it names (all of
    them with ``**kwargs``), in the thread pool if it is a plain ``def``."""
    parameters = inspect.signature(endpoint).parameters.values()
    takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in parameters)
    names = [p.name for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    is_async = _is_async(endpoint)

    async def call(request: Request, path_params: dict[str, Any]) -> Any:
        args = (request,) if any(name not in path_params for name in names) else ()
        kwargs = path_params
        if not takes_kwargs:
            kwargs = {name: path_params[name] for name in names if name in path_params}
        if is_async:
            return await endpoint(*args, **kwargs)
        return await asyncio.to_thread(functools.partial(endpoint, *args, **kwargs))

    return call


def _is_async(endpoint: Callable[..., Any]) -> bool:
    if inspect.iscoroutinefunction(endpoint):
        return True
    call = None if inspect.isfunction(endpoint) else type(endpoint).__dict__.get("__call__")
    return call is not None and inspect.iscoroutinefunction(call)


# --- keys -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JWK:
    algorithm: str | None  # the JWK's "alg", when it names one
    key: Any


def load_public_key(pem: str, where: str) -> Any:
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        return load_pem_public_key(pem.encode("ascii"))
    except (ValueError, TypeError, UnicodeError) as exc:
        raise InvalidValue(f"not a PEM public key: {exc}", key=where) from None


def load_jwks(path: str) -> dict[str, JWK]:
    """``kid`` -> key, from a JWKS file (public keys only; ``use: enc`` keys skipped)."""
    from jwt import PyJWK
    from jwt.exceptions import PyJWTError

    try:
        document = json.loads(Path(path).read_text())
        entries = document["keys"]
        assert isinstance(entries, list)
    except (OSError, ValueError, KeyError, TypeError, AssertionError):
        raise InvalidValue(f"{path}: not a JWKS file (JSON with a keys list)") from None
    keys: dict[str, JWK] = {}
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or entry.get("use") == "enc" or entry.get("kty") == "oct":
            continue
        kid = entry.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidValue(f"{path}: key {index} has no kid")
        try:
            keys[kid] = JWK(entry.get("alg"), PyJWK(entry).key)
        except PyJWTError as exc:
            raise InvalidValue(f"{path}: key {kid!r}: {exc}") from None
    if not keys:
        raise InvalidValue(f"{path}: no usable public key")
    return keys


def key_fits(algorithm: str, key: Any) -> bool:
    """True when ``key`` is of the type ``algorithm`` verifies with."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

    if algorithm in RSA_ALGORITHMS:
        return isinstance(key, rsa.RSAPublicKey)
    if algorithm in EC_ALGORITHMS:
        return isinstance(key, ec.EllipticCurvePublicKey)
    return isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey)


class Keys:
    """The verification keys, chosen by the token's algorithm and ``kid``."""

    def __init__(self, secret: str | None, public_pem: str | None, jwks: dict[str, JWK]) -> None:
        self.secret = secret.encode("utf-8") if secret is not None else None
        self.public = load_public_key(public_pem, "public_key") if public_pem else None
        self.jwks = jwks

    @property
    def configured(self) -> bool:
        return self.secret is not None or self.public is not None or bool(self.jwks)

    def has_key_for(self, algorithm: str) -> bool:
        if algorithm in HMAC_ALGORITHMS:
            return self.secret is not None
        keys = [self.public, *(jwk.key for jwk in self.jwks.values())]
        return any(key is not None and key_fits(algorithm, key) for key in keys)

    def for_token(self, algorithm: str, kid: object) -> Any:
        if algorithm in HMAC_ALGORITHMS:
            if self.secret is None:
                raise AuthError("no key for this algorithm")
            return self.secret
        key = self._asymmetric(algorithm, kid)
        if not key_fits(algorithm, key):
            raise AuthError("the key does not match the algorithm")
        return key

    def _asymmetric(self, algorithm: str, kid: object) -> Any:
        if kid is not None and self.jwks:
            jwk = self.jwks.get(kid) if isinstance(kid, str) else None
            if jwk is None:
                raise AuthError("unknown key id")
            if jwk.algorithm is not None and jwk.algorithm != algorithm:
                raise AuthError("the key does not match the algorithm")
            return jwk.key
        if self.public is not None:
            return self.public
        if len(self.jwks) == 1:
            return next(iter(self.jwks.values())).key
        raise AuthError("the token names no key id")


# --- options ---------------------------------------------------------------------------------


class Algorithm(Choice):
    def __init__(self) -> None:
        super().__init__(*ALGORITHMS)

    def parse(self, value: object) -> str:
        if isinstance(value, str) and value.strip().lower() == "none":
            raise InvalidValue('"none" (unsigned tokens) can never be allowed')
        return super().parse(value)


class AuthMiddleware(Middleware):
    """JWT bearer and session authentication (see the module docstring)."""

    name = "auth"

    @dataclass(frozen=True)
    class Options:
        algorithms: tuple[str, ...] = setting(
            ListOf(Algorithm(), "a list of JWS algorithms", single_ok=True, unique=True),
            ["HS256"],
            "Allowed token algorithms (HS256, RS256, ES256, EdDSA...; never none).",
        )
        secret: str | None = setting(
            Optional(Secret(32)), None, 'HMAC key for HS* tokens: "${JWT_SECRET}".'
        )
        public_key: str | None = setting(
            Optional(Text("a PEM public key")),
            None,
            'PEM public key for RS*/PS*/ES*/EdDSA: "${JWT_PUBLIC_KEY}".',
        )
        public_key_file: str | None = setting(
            Optional(ExistingFile()), None, "File holding the PEM public key."
        )
        jwks_file: str | None = setting(
            Optional(ExistingFile()), None, "JWKS file; the token's kid selects the key."
        )
        audience: tuple[str, ...] | None = setting(
            Optional(ListOf(Text(), "an audience or a list", single_ok=True)),
            None,
            "Accepted aud values; null: tokens with an aud are refused.",
        )
        issuer: str | None = setting(Optional(Text()), None, "Required iss value.")
        leeway: float = setting(Duration(), 0, "Clock skew allowed on exp, nbf and iat.")
        required_claims: tuple[str, ...] = setting(
            ListOf(Text(), "a list of claim names", nonempty=False),
            ["exp", "iat", "sub"],
            "Claims a token must carry.",
        )
        scopes_claim: str = setting(
            Text(), "scope", 'Claim with the scopes: "a b c" (OAuth 2) or a list.'
        )
        session_key: str | None = setting(
            Optional(Text()), None, "Session key of a logged-in user; null: no session auth."
        )
        protect: Mapping[str, tuple[str, ...]] = setting(
            MappingOf(
                ListOf(Text(), "a list of scopes", single_ok=True, nonempty=False),
                "a mapping of path patterns to scope lists",
                paths=True,
            ),
            {},
            'Scopes paths need: {"/admin/*": ["admin"], "/api/*": []} ([]: logged in).',
        )
        max_token_size: int = setting(Size(1), "8KiB", "Longer bearer tokens are refused.")

        def __post_init__(self) -> None:
            keyed = self.secret or self.public_key or self.public_key_file or self.jwks_file
            if keyed and importlib.util.find_spec("jwt") is None:
                message = "JWT bearer auth needs PyJWT: pip install 'covetd[jwt]'"
                raise InvalidValue(message, key="algorithms")
            if self.public_key and self.public_key_file:
                raise InvalidValue("give public_key or public_key_file, not both", key="public_key")
            keys = Keys(self.secret, self.public_pem(), self.jwks())
            if self.secret is not None:
                for algorithm in self.algorithms:
                    minimum = _HMAC_MINIMUM.get(algorithm, 0)
                    if len(keys.secret or b"") < minimum:
                        message = f"{algorithm} needs a secret of at least {minimum} bytes"
                        raise InvalidValue(message, key="secret")
            if keys.configured:
                for algorithm in self.algorithms:
                    if not keys.has_key_for(algorithm):
                        message = f"{algorithm} is allowed but no configured key can verify it"
                        raise InvalidValue(message, key="algorithms")

        def public_pem(self) -> str | None:
            if self.public_key_file:
                return Path(self.public_key_file).read_text()
            return self.public_key

        def jwks(self) -> dict[str, JWK]:
            if self.jwks_file is None:
                return {}
            try:
                return load_jwks(self.jwks_file)
            except InvalidValue as exc:
                raise InvalidValue(exc.message, key="jwks_file") from None

    def __init__(self, app: Any, options: Any = None) -> None:
        super().__init__(app, options)
        opts: AuthMiddleware.Options = self.options
        self.keys = Keys(opts.secret, opts.public_pem(), opts.jwks())
        # fnmatchcase(path, pattern) is translate(pattern)'s match; compiled once here
        # (fnmatchcase looks it up in a cache on every call).
        self.protect = [
            (re.compile(fnmatch.translate(pattern)).match, frozenset(scopes))
            for pattern, scopes in opts.protect.items()
        ]
        self.decode_options: DecodeOptions = {
            "require": list(opts.required_claims),
            "enforce_minimum_key_length": True,
        }

    async def __call__(self, request: Request) -> Response:
        try:
            user = self.authenticate(request)
        except AuthError as exc:
            header = challenge("invalid_token", str(exc))
            return JSONResponse({"detail": str(exc)}, 401, {"WWW-Authenticate": header})
        request.user = user
        needed = self.needed_scopes(request.path)
        if needed is not None:
            refused = refusal(user, needed)
            if refused is not None:
                status, detail, header = refused
                return JSONResponse({"detail": detail}, status, {"WWW-Authenticate": header})
        return await self.app(request)

    def authenticate(self, request: Request) -> User:
        authorization = None
        for name, value in request.raw_headers:  # the first one, as headers.get
            if name == b"authorization":
                authorization = value.decode("latin-1")
                break
        if authorization is not None and self.keys.configured:
            scheme, _, token = authorization.strip().partition(" ")
            if scheme.lower() == "bearer":
                return self.verify(token.strip())
        if self.options.session_key is not None:
            return session_user(request.session.get(self.options.session_key))
        return ANONYMOUS

    def needed_scopes(self, path: str) -> frozenset[str] | None:
        """The scopes every ``protect`` pattern matching ``path`` needs; None: public."""
        needed: frozenset[str] | None = None
        for matches, scopes in self.protect:
            if matches(path):
                needed = scopes if needed is None else needed | scopes
        return needed

    def verify(self, token: str) -> User:
        """The user a bearer token proves, or ``AuthError``."""
        import jwt

        if not token or len(token) > self.options.max_token_size:
            raise AuthError("malformed token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthError("malformed token") from None
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm not in self.options.algorithms:
            raise AuthError("algorithm not allowed")
        key = self.keys.for_token(algorithm, header.get("kid"))
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=list(self.options.audience) if self.options.audience else None,
                issuer=self.options.issuer,
                leeway=self.options.leeway,
                options=self.decode_options,
            )
        except jwt.PyJWTError as exc:
            raise AuthError(_describe(exc)) from None
        return self.user_from(claims)

    def user_from(self, claims: dict[str, Any]) -> User:
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise AuthError("the token has no subject")
        scopes = _scopes(claims.get(self.options.scopes_claim))
        return User(subject, scopes, MappingProxyType(claims), "jwt")


def session_user(value: object) -> User:
    """The user a session entry names (a subject, or ``{"sub": ..., "scopes": [...]}``)."""
    if isinstance(value, str) and value:
        return User(value, source="session")
    if isinstance(value, dict):
        subject = value.get("sub", value.get("id"))
        if subject is not None and subject != "":
            return User(str(subject), _scopes(value.get("scopes")), source="session")
    return ANONYMOUS


def _scopes(value: object) -> frozenset[str]:
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list | tuple):
        return frozenset(item for item in value if isinstance(item, str))
    return frozenset()


def _describe(exc: Exception) -> str:
    """A fixed phrase per PyJWT error (never the token's own text)."""
    import jwt

    phrases: list[tuple[type[Exception], str]] = [
        (jwt.ExpiredSignatureError, "the token has expired"),
        (jwt.ImmatureSignatureError, "the token is not valid yet"),
        (jwt.InvalidAudienceError, "wrong audience"),
        (jwt.InvalidIssuerError, "wrong issuer"),
        (jwt.MissingRequiredClaimError, "a required claim is missing"),
        (jwt.InvalidSignatureError, "signature verification failed"),
        (jwt.InvalidIssuedAtError, "the token's iat is invalid"),
        (jwt.InvalidKeyError, "the key does not match the algorithm"),
        (jwt.InvalidAlgorithmError, "algorithm not allowed"),
    ]
    for cls, phrase in phrases:
        if isinstance(exc, cls):
            return phrase
    return "invalid token"
