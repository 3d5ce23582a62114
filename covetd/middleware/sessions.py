"""``sessions``: ``request.session``, a dict kept in a signed cookie or in Redis.

Cookie store: the cookie is ``base64url(JSON).timestamp.signature``, an HMAC-SHA256
signature by the first of ``secret_keys`` (any listed key is accepted, so keys
rotate). Anyone can *read* the data (it is signed, not encrypted): keep secrets out of
it. A cookie that fails the signature or is older than ``max_age`` gives a fresh empty
session, and is deleted.

Redis store: the cookie holds only a signed random session id; the data is a JSON
string at ``prefix + id`` that expires ``max_age`` after the last write.

Only a change writes: the session is compared with what was loaded when the response
comes back, so a request that does not touch it sends no ``Set-Cookie`` (a session
lives ``max_age`` after its last change). Emptying it deletes the cookie. A cookie
larger than ``max_size`` is not sent (logged), never truncated.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any, Final

from ..app.requests import Request
from ..app.responses import PlainTextResponse, Response
from ..config.errors import InvalidValue
from ..config.fields import REQUIRED, setting
from ..config.types import Boolean, Choice, Duration, ListOf, Optional, Size, Text, Url
from .base import Middleware
from .cookies import CookieSpec
from .option_types import CookieDomain, CookieName, CookiePath, Secret
from .redis_link import INSTALL_HINT, RedisLink, RedisUnavailable, redis_missing
from .signing import BadSignature, Signer, b64decode, b64encode

__all__ = ["SessionMiddleware"]

DEFAULT_REDIS_TTL = 86400  # data of a browser-session cookie (max_age: null) in Redis


@dataclass(slots=True)
class Loaded:
    """A session as read from the request: ``snapshot`` is its canonical JSON, to see
    whether the handler changed it; ``rejected`` marks a cookie we could not use."""

    data: dict[str, Any]
    snapshot: str = "{}"
    rejected: bool = False
    session_id: str | None = None


# What a request without a session cookie loaded (read, never changed: its ``data`` is
# not the dict the handler gets).
NOTHING_LOADED: Final = Loaded({})


def dump(data: object) -> str:
    """Canonical JSON (sorted keys, compact) of the session."""
    if not isinstance(data, dict):
        raise TypeError(f"request.session must be a dict, not {type(data).__name__}")
    try:
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"request.session must hold JSON data: {exc}") from None


def _parse(text: str | bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


class CookieStore:
    """The whole session in the cookie: ``base64url(JSON).timestamp.signature``."""

    def __init__(self, signer: Signer, max_age: float | None) -> None:
        self.signer = signer
        self.max_age = max_age

    async def load(self, cookie: str) -> Loaded:
        try:
            payload, _ = self.signer.unsign_timestamped(cookie, self.max_age)
            text = b64decode(payload).decode("utf-8")
        except (BadSignature, ValueError):
            return Loaded({}, rejected=True)
        data = _parse(text)
        return Loaded({}, rejected=True) if data is None else Loaded(data, text)

    async def save(self, loaded: Loaded, snapshot: str) -> str:
        return self.signer.sign_timestamped(b64encode(snapshot.encode("utf-8")))

    async def clear(self, loaded: Loaded) -> None:
        return None


class RedisStore:
    """The data in Redis under a random id; the cookie is the signed id."""

    def __init__(self, signer: Signer, link: RedisLink, prefix: str, ttl: int) -> None:
        self.signer = signer
        self.link = link
        self.prefix = prefix
        self.ttl = ttl

    async def load(self, cookie: str) -> Loaded:
        try:
            session_id = self.signer.unsign(cookie)
        except BadSignature:
            return Loaded({}, rejected=True)
        key = self.prefix + session_id
        stored = await self.link.call(lambda client: client.get(key))
        data = _parse(stored) if stored is not None else None
        if data is None:  # expired (or foreign): a new session gets a new id
            return Loaded({}, rejected=True)
        return Loaded(data, dump(data), session_id=session_id)

    async def save(self, loaded: Loaded, snapshot: str) -> str:
        session_id = loaded.session_id or secrets.token_urlsafe(32)
        key = self.prefix + session_id
        await self.link.call(lambda client: client.set(key, snapshot, ex=self.ttl))
        return self.signer.sign(session_id)

    async def clear(self, loaded: Loaded) -> None:
        if loaded.session_id is not None:
            key = self.prefix + loaded.session_id
            await self.link.call(lambda client: client.delete(key))


class SessionMiddleware(Middleware):
    """Signed-cookie or Redis sessions (see the module docstring)."""

    name = "sessions"

    @dataclass(frozen=True)
    class Options:
        secret_keys: tuple[str, ...] = setting(
            ListOf(Secret(32), "a list of secrets"),
            REQUIRED,
            'Signing keys, newest first: ["${SESSION_KEY}", "${OLD_SESSION_KEY}"].',
        )
        cookie_name: str = setting(CookieName(), "session", "Name of the session cookie.")
        max_age: float | None = setting(
            Optional(Duration(positive=True)),
            1209600,
            "Lifetime after the last change (14 days); null: until the browser closes.",
        )
        path: str = setting(CookiePath(), "/", "Cookie Path attribute.")
        domain: str | None = setting(
            Optional(CookieDomain()), None, "Cookie Domain attribute; null: this host only."
        )
        secure: bool = setting(Boolean(), True, "Secure attribute: send over HTTPS only.")
        http_only: bool = setting(Boolean(), True, "HttpOnly attribute: hidden from JavaScript.")
        same_site: str = setting(
            Choice("lax", "strict", "none"), "lax", "SameSite attribute (none needs secure)."
        )
        max_size: int = setting(
            Size(64), 4093, "Largest Set-Cookie value; a larger cookie is logged and not sent."
        )
        store: str = setting(
            Choice("cookie", "redis"), "cookie", "cookie: data in the cookie; redis: server-side."
        )
        url: str | None = setting(
            Optional(Url("redis", "rediss", "unix")),
            None,
            'Redis URL for `store: redis` (write "${REDIS_URL}").',
        )
        prefix: str = setting(Text(), "covetd:session:", "Prefix of the Redis keys.")
        timeout: float = setting(
            Duration(positive=True), 0.5, "Longest wait for Redis; then the answer is 503."
        )

        def __post_init__(self) -> None:
            if self.same_site == "none" and not self.secure:
                raise InvalidValue("browsers refuse SameSite=None without Secure", key="secure")
            if self.store == "redis":
                if self.url is None:
                    raise InvalidValue("`store: redis` needs a Redis URL", key="url")
                if redis_missing():
                    raise InvalidValue(INSTALL_HINT, key="store")

    def __init__(self, app: Any, options: Any = None) -> None:
        super().__init__(app, options)
        opts: SessionMiddleware.Options = self.options
        self.cookie = CookieSpec(
            opts.cookie_name,
            path=opts.path,
            domain=opts.domain,
            secure=opts.secure,
            http_only=opts.http_only,
            same_site=opts.same_site,
            max_age=int(opts.max_age) if opts.max_age is not None else None,
            max_size=opts.max_size,
        )
        self.store: CookieStore | RedisStore
        if opts.store == "redis":
            assert opts.url is not None
            ttl = int(opts.max_age) if opts.max_age is not None else DEFAULT_REDIS_TTL
            signer = Signer(opts.secret_keys, "sessions.id")
            self.store = RedisStore(signer, RedisLink(opts.url, opts.timeout), opts.prefix, ttl)
        else:
            self.store = CookieStore(Signer(opts.secret_keys, "sessions.cookie"), opts.max_age)

    async def __call__(self, request: Request) -> Response:
        for name, _ in request.raw_headers:
            if name == b"cookie":
                cookie = request.cookies.get(self.cookie.name)
                break
        else:
            cookie = None  # no Cookie header: skip building request.cookies
        if cookie:
            try:
                loaded = await self.store.load(cookie)
            except RedisUnavailable:
                return _store_unavailable()
            request.session = loaded.data
        else:
            loaded = NOTHING_LOADED
            request.session = {}
        response = await self.app(request)
        data = request.session
        if not data and not loaded.rejected and loaded.snapshot == "{}" and type(data) is dict:
            # Empty before, empty after: commit would compare "{}" with "{}" and write
            # nothing. (Most requests: no cookie, and a handler that never used it.)
            return response
        try:
            await self.commit(data, loaded, response)
        except RedisUnavailable:
            return _store_unavailable()
        return response

    async def commit(self, data: dict[str, Any], loaded: Loaded, response: Response) -> None:
        """Write the session into ``response`` if the handler changed it."""
        snapshot = dump(data)
        if snapshot == loaded.snapshot:
            if loaded.rejected:
                self.cookie.delete(response)  # stop the client sending a dead cookie
            return
        if not data:
            await self.store.clear(loaded)
            self.cookie.delete(response)
            return
        self.cookie.write(response, await self.store.save(loaded, snapshot))


def _store_unavailable() -> Response:
    return PlainTextResponse("Session store unavailable\n", 503, {"Retry-After": "1"})
