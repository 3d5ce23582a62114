# ruff: noqa: RUF009 - settings are declared as dataclass field defaults (config.fields)
"""``rate_limit``: a token bucket per client, exact across the workers of a host
(``local``) or across hosts (``redis``).

Each key (the client address, a header, or the authenticated subject) has a bucket of
``burst`` tokens refilled at ``rate``; a request takes a token or is answered 429 with
``Retry-After``. Every answer carries the IETF draft's ``RateLimit-Limit``,
``RateLimit-Remaining``, ``RateLimit-Reset`` (seconds until the bucket is full) and
``RateLimit-Policy``. ``routes`` gives paths their own limits (the first matching
pattern wins; other paths get the top-level ``rate``). How the state is shared, and
why no key can exceed its limit, is in ``ratelimit_store.py``.

Put ``auth`` before this middleware to key by user (``key: user``), and
``proxy_headers`` before it so the client address is the real client's.
"""

from __future__ import annotations

import fnmatch
import functools
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..app.requests import Request
from ..app.responses import PlainTextResponse, Response
from ..config.errors import InvalidValue, show
from ..config.fields import setting
from ..config.types import (
    Boolean,
    Choice,
    Duration,
    Integer,
    Optional,
    Text,
    Url,
    ValueType,
    is_int,
    is_number,
)
from .base import Middleware
from .option_types import MappingOf
from .ratelimit_store import Decision, Limit, LocalStore, RedisStore
from .redis_link import INSTALL_HINT, RedisLink, RedisUnavailable, redis_missing

__all__ = ["Rate", "RateLimitMiddleware"]

_UNITS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60}
_UNITS.update({"h": 3600, "hour": 3600, "d": 86400, "day": 86400})
_RATE = re.compile(
    r"(?P<count>\d+(?:\.\d+)?)\s*(?:/\s*(?P<every>\d+)?\s*(?P<unit>[a-z]+?)s?)?", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class Rate:
    """``count`` requests per ``period`` seconds."""

    count: float
    period: float

    @property
    def per_second(self) -> float:
        return self.count / self.period

    def default_burst(self) -> int:
        """A bucket as large as one period's allowance (at least one token)."""
        return max(1, math.ceil(self.count))

    def __str__(self) -> str:
        for unit in ("day", "hour", "minute", "second"):
            seconds = _UNITS[unit]
            if self.period == seconds:
                return f"{self.count:g}/{unit}"
            if self.period % seconds == 0:
                return f"{self.count:g}/{self.period // seconds:g}{unit}s"
        return f"{self.count:g}/{self.period:g}s"


class RateType(ValueType[Rate]):
    """A number (per second) or ``"N/unit"``, ``"N/Kunits"`` with unit second, minute,
    hour or day (``"100/minute"``, ``"5/10s"``, ``"1000/hour"``)."""

    description = 'a rate: a number per second, or "N/second", "N/minute", "N/hour", "N/day"'

    def parse(self, value: object) -> Rate:
        rate = self._rate(value)
        if rate is None or rate.count <= 0 or rate.period <= 0:
            self.fail(value)
        return rate

    def dump(self, value: Rate) -> object:
        return str(value)

    @staticmethod
    def _rate(value: object) -> Rate | None:
        if is_number(value):
            return Rate(float(value), 1.0)
        if not isinstance(value, str):
            return None
        match = _RATE.fullmatch(value.strip())
        if match is None:
            return None
        unit = (match["unit"] or "s").lower()
        if unit not in _UNITS:
            return None
        every = int(match["every"]) if match["every"] else 1
        return Rate(float(match["count"]), float(every * _UNITS[unit]))


@dataclass(frozen=True, slots=True)
class RouteLimit:
    rate: Rate
    burst: int | None = None


class RouteLimitType(ValueType[RouteLimit]):
    """A rate (``"10/minute"``) or ``{rate: ..., burst: N}``."""

    description = 'a rate ("10/minute") or a mapping {rate: ..., burst: N}'

    def parse(self, value: object) -> RouteLimit:
        if not isinstance(value, Mapping):
            return RouteLimit(RateType().parse(value))
        unknown = set(value) - {"rate", "burst"}
        if unknown or "rate" not in value:
            detail = f"unknown key {show(sorted(unknown)[0])}" if unknown else '"rate" is missing'
            raise InvalidValue(f"{self.description}: {detail}")
        burst = value.get("burst")
        if burst is not None and (not is_int(burst) or burst < 1):
            raise InvalidValue(f"burst: expected a positive integer, got {show(burst)}")
        return RouteLimit(RateType().parse(value["rate"]), burst)

    def dump(self, value: RouteLimit) -> object:
        return {"rate": str(value.rate), "burst": value.burst}


class RateLimitMiddleware(Middleware):
    """Token-bucket rate limiting (see the module docstring)."""

    name = "rate_limit"

    @dataclass(frozen=True)
    class Options:
        rate: Rate | None = setting(
            Optional(RateType()), "60/minute", "Default limit; null limits only `routes`."
        )
        burst: int | None = setting(
            Optional(Integer(1)), None, "Bucket size; null: the rate's count (100 for 100/minute)."
        )
        key: str = setting(
            Choice("client", "header", "user"),
            "client",
            "What a bucket belongs to: client address, a header's value, or request.user.",
        )
        header: str | None = setting(
            Optional(Text("a header name")), None, "The header to key by when `key: header`."
        )
        routes: Mapping[str, RouteLimit] = setting(
            MappingOf(RouteLimitType(), "a mapping of path patterns to limits", paths=True),
            {},
            'Per-route limits: {"/login": "5/minute", "/api/*": {rate: 10, burst: 20}}.',
        )
        backend: str = setting(
            Choice("local", "redis"),
            "local",
            "local: exact across this host's workers; redis: across hosts.",
        )
        url: str | None = setting(
            Optional(Url("redis", "rediss", "unix")),
            None,
            'Redis URL for `backend: redis` (write "${REDIS_URL}").',
        )
        prefix: str = setting(Text(), "covetd:ratelimit:", "Prefix of the Redis keys.")
        timeout: float = setting(
            Duration(positive=True), 0.25, "Longest wait for Redis before failing open/closed."
        )
        fail_open: bool = setting(
            Boolean(), True, "With Redis down: true lets requests through, false answers 503."
        )
        slots: int = setting(
            Integer(64), 65536, "Buckets per limit in the local table (24 bytes each)."
        )
        directory: str | None = setting(
            Optional(Text("a directory")),
            None,
            "Where the local table lives; null: /dev/shm, $XDG_RUNTIME_DIR or the temp dir.",
        )
        headers: bool = setting(Boolean(), True, "Send RateLimit-* headers on every response.")

        def __post_init__(self) -> None:
            if self.key == "header" and not self.header:
                raise InvalidValue("`key: header` needs the header's name", key="header")
            if self.backend == "redis":
                if self.url is None:
                    raise InvalidValue("`backend: redis` needs a Redis URL", key="url")
                if redis_missing():
                    raise InvalidValue(INSTALL_HINT, key="backend")

    def __init__(self, app: Any, options: Any = None) -> None:
        super().__init__(app, options)
        opts: RateLimitMiddleware.Options = self.options
        self.default = _limit("*", opts.rate, opts.burst) if opts.rate is not None else None
        self.routes = [
            (pattern, _limit(pattern, route.rate, route.burst))
            for pattern, route in opts.routes.items()
        ]
        # fnmatchcase(path, pattern) is translate(pattern)'s match, compiled once here.
        self.route_matches = [
            (re.compile(fnmatch.translate(pattern)).match, limit) for pattern, limit in self.routes
        ]
        self.key_of = self._key_function(opts)
        self.send_headers = opts.headers
        self.local: LocalStore | None = None
        if opts.backend == "redis":
            assert opts.url is not None
            self.store: LocalStore | RedisStore = RedisStore(
                RedisLink(opts.url, opts.timeout), opts.prefix
            )
        else:
            self.store = self.local = LocalStore(opts.slots, opts.directory)

    async def __call__(self, request: Request) -> Response:
        limit = self.limit_for(request.path)
        if limit is None:
            return await self.app(request)
        if self.local is not None:  # a few microseconds, never waits: no coroutine
            decision = self.local.take_now(limit, self.key_of(request))
        else:
            try:
                decision = await self.store.take(limit, self.key_of(request))
            except RedisUnavailable:
                if self.options.fail_open:
                    return await self.app(request)
                return PlainTextResponse("Rate limiter unavailable\n", 503, {"Retry-After": "1"})
        if not decision.allowed:
            return self.too_many(limit, decision)
        response = await self.app(request)
        if self.send_headers:
            response.raw_headers += _headers(limit, decision)
        return response

    def limit_for(self, path: str) -> Limit | None:
        """The first route pattern matching ``path``, else the default limit."""
        for matches, limit in self.route_matches:
            if matches(path):
                return limit
        return self.default

    def too_many(self, limit: Limit, decision: Decision) -> Response:
        retry_after = {"Retry-After": str(max(1, math.ceil(decision.retry_after)))}
        response = PlainTextResponse("Too Many Requests\n", 429, retry_after)
        if self.send_headers:
            response.raw_headers.extend(_headers(limit, decision))
        return response

    @staticmethod
    def _key_function(opts: Any) -> Callable[[Request], str]:
        if opts.key == "header":
            header = opts.header.lower()
            return lambda request: _header_key(request, header)
        if opts.key == "user":
            return _user_key
        return _client_key


def _limit(name: str, rate: Rate, burst: int | None) -> Limit:
    return Limit(rate.per_second, burst or rate.default_burst(), name)


def _headers(limit: Limit, decision: Decision) -> list[tuple[bytes, bytes]]:
    """The ``RateLimit-*`` headers, encoded here (fixed names, digits: nothing to check)."""
    limit_header, policy_header = _fixed_headers(limit)
    return [
        limit_header,
        (b"ratelimit-remaining", b"%d" % decision.remaining),
        (b"ratelimit-reset", b"%d" % math.ceil(decision.reset_after)),
        policy_header,
    ]


@functools.lru_cache(maxsize=64)
def _fixed_headers(limit: Limit) -> tuple[tuple[bytes, bytes], tuple[bytes, bytes]]:
    """``RateLimit-Limit`` (a decision's ``limit`` is its limit's burst) and
    ``RateLimit-Policy``: the same on every answer under ``limit``."""
    return (
        (b"ratelimit-limit", b"%d" % limit.burst),
        (b"ratelimit-policy", b"%d;w=%d" % (limit.burst, limit.window)),
    )


def _client_key(request: Request) -> str:
    client = request.client
    return "c:" + (client.host if client is not None else "-")


def _header_key(request: Request, header: str) -> str:
    value = request.headers.get(header)
    return "h:" + value if value else _client_key(request)


def _user_key(request: Request) -> str:
    subject = request.user.subject
    return "u:" + subject if subject is not None else _client_key(request)
