"""The middleware chain: built once per worker from the ``middleware:`` list, outermost
first, around the app's handler. With no entries the handler is the app's own: the
hot path pays nothing for the feature."""

from __future__ import annotations

import fnmatch
import importlib
from collections.abc import Mapping, Sequence
from typing import Any

from ..config import Config, MiddlewareEntry
from ..config.errors import ConfigError
from .base import Handler, Middleware
from .options import parse_options

__all__ = [
    "BUILTINS",
    "build_chain",
    "chain_members",
    "config_defaults",
    "configured_entries",
    "middleware_class",
]

# YAML name -> "module:Class" (imported only when used).
BUILTINS: dict[str, str] = {
    "proxy_headers": "covetd.middleware.proxy_headers:ProxyHeadersMiddleware",
    "trusted_host": "covetd.middleware.trusted_host:TrustedHostMiddleware",
    "cors": "covetd.middleware.cors:CORSMiddleware",
    "security_headers": "covetd.middleware.security_headers:SecurityHeadersMiddleware",
    "compression": "covetd.middleware.compression:CompressionMiddleware",
    "gzip": "covetd.middleware.compression:GZipMiddleware",
    "rate_limit": "covetd.middleware.rate_limit:RateLimitMiddleware",
    "sessions": "covetd.middleware.sessions:SessionMiddleware",
    "csrf": "covetd.middleware.csrf:CSRFMiddleware",
    "auth": "covetd.middleware.auth:AuthMiddleware",
    "access_log": "covetd.middleware.access_log:AccessLogMiddleware",
    "request_id": "covetd.middleware.request_id:RequestIdMiddleware",
    "timeout": "covetd.middleware.timeout:TimeoutMiddleware",
}


def import_object(spec: str) -> object:
    """``module:attr.path`` → the object (the app's directory is already importable)."""
    module_name, _, attr = spec.partition(":")
    obj: object = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def middleware_class(name: str, where: str = "") -> type[Middleware]:
    """The class for a YAML entry name (built-in or "module:Class")."""
    spec = BUILTINS.get(name, name)
    try:
        cls = import_object(spec)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(
            f"cannot load middleware: {exc}", origin=where or None, key=f"middleware.{name}"
        ) from None
    if not (isinstance(cls, type) and issubclass(cls, Middleware)):
        raise ConfigError(
            f"{spec} is not a covetd Middleware class",
            origin=where or None,
            key=f"middleware.{name}",
        )
    return cls


class _Scoped:
    """Runs ``middleware`` only for paths it is scoped to; others skip straight past."""

    __slots__ = ("bypass", "exclude", "include", "middleware")

    def __init__(
        self, middleware: Handler, bypass: Handler, include: list[str], exclude: list[str]
    ) -> None:
        self.middleware = middleware
        self.bypass = bypass
        self.include = include
        self.exclude = exclude

    def applies(self, path: str) -> bool:
        if self.include and not any(fnmatch.fnmatchcase(path, p) for p in self.include):
            return False
        return not any(fnmatch.fnmatchcase(path, p) for p in self.exclude)

    async def __call__(self, request: Any) -> Any:
        if self.applies(request.path):
            return await self.middleware(request)
        return await self.bypass(request)


def _patterns(entry: MiddlewareEntry, key: str) -> list[str]:
    value = entry.options.get(key, ())
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence) and all(isinstance(item, str) for item in value):
        return list(value)
    raise ConfigError(
        "expected a path pattern or a list of them",
        origin=entry.where or None,
        key=f"middleware.{entry.name}.{key}",
    )


def configured_entries(config: Config) -> list[MiddlewareEntry]:
    """The ``middleware:`` list, plus the access log ``logging.access_log`` asks for
    (outermost, so it sees what the client gets) unless the list has its own."""
    entries = list(config.middleware)
    logs = config.logging
    if logs.access_log and not any(entry.name == "access_log" for entry in entries):
        options = {
            "format": "json" if logs.format == "json" else "combined",
            "output": logs.access_log_file or "stdout",
        }
        entries.insert(0, MiddlewareEntry("access_log", options, "logging.access_log"))
    return entries


def config_defaults(config: Config) -> dict[str, dict[str, object]]:
    """Middleware options whose default is a top-level config key (DESIGN section 4:
    ``http.proxy_headers.trusted`` is where operators say which proxies they trust)."""
    return {"proxy_headers": {"trusted": list(config.http.proxy_headers.trusted)}}


def build_chain(
    entries: Sequence[MiddlewareEntry],
    endpoint: Handler,
    defaults: Mapping[str, Mapping[str, object]] | None = None,
) -> Handler:
    """``endpoint`` wrapped by ``entries`` (the first entry is the outermost);
    ``defaults``: options per middleware name that an entry does not set itself."""
    handler = endpoint
    for entry in reversed(entries):
        cls = middleware_class(entry.name, entry.where)
        given = entry.options
        if defaults and entry.name in defaults:
            given = {**defaults[entry.name], **given}
        options = parse_options(cls.Options, given, entry.name, entry.where)
        wrapped: Handler = cls(handler, options)
        include, exclude = _patterns(entry, "include"), _patterns(entry, "exclude")
        if include or exclude:
            wrapped = _Scoped(wrapped, handler, include, exclude)
        handler = wrapped
    return handler


def chain_members(handler: object) -> list[object]:
    """Every middleware of a chain ``build_chain`` made, outermost first (for the
    worker to find the ones that also watch the engine, such as the access log)."""
    members: list[object] = []
    while handler is not None and all(handler is not seen for seen in members):
        if isinstance(handler, _Scoped):
            handler = handler.middleware
        members.append(handler)
        handler = getattr(handler, "app", None)
    return members
