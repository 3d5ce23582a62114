"""Every covetd setting, declared once: key, type, default, CLI flag and doc line.

Each section is a frozen dataclass whose fields are the settings (see ``fields.py``).
This one table drives validation (``loader``), command-line overrides (``overrides``
and ``cli``), ``--print-config`` (``dump``) and ``docs/configuration.md`` (``docs``).
Invariants that tie two keys together live in the section's ``__post_init__`` and name
the key they blame.
"""

# ``setting()`` and ``section()`` return ``dataclasses.field(...)``; ruff cannot see that.
# ruff: noqa: RUF009

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field

from covetd.config.bind import BindAddress
from covetd.config.dump import config_to_dict
from covetd.config.errors import InvalidValue
from covetd.config.fields import (
    REQUIRED,
    Flag,
    middleware_list,
    section,
    section_map,
    setting,
)
from covetd.config.masking import mask_all, mask_url
from covetd.config.middleware import MiddlewareEntry
from covetd.config.types import (
    Bind,
    Boolean,
    Choice,
    Duration,
    ExistingFile,
    HeaderValue,
    ImportPath,
    Increasing,
    Integer,
    ListOf,
    Network,
    OctalMode,
    Optional,
    Pattern,
    PositiveNumber,
    Size,
    Text,
    TextMapping,
    Url,
    Workers,
)

BUILTIN_MIDDLEWARE: tuple[str, ...] = (
    "proxy_headers",
    "trusted_host",
    "cors",
    "security_headers",
    "compression",
    "gzip",
    "rate_limit",
    "sessions",
    "csrf",
    "auth",
    "access_log",
    "request_id",
    "timeout",
)
"""Middleware names usable without an import path (``covetd/middleware`` registers them)."""

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
BROADCAST_URL_SCHEMES = {
    "redis": ("redis", "rediss", "unix"),
    "postgres": ("postgres", "postgresql"),
}

_HOOK = Optional(ImportPath(what="callable"))
_PATH = Optional(Text("a path"))
_NAME = Optional(Text("a name or numeric id"))
_POSTGRES_URL = Url("postgres", "postgresql")


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Sockets, processes and their lifetimes (the master's settings)."""

    bind: tuple[BindAddress, ...] = setting(
        ListOf(Bind(), "an address or a list of addresses", single_ok=True, unique=True),
        ["127.0.0.1:8000"],
        'Listening addresses: "host:port", "[v6]:port", "unix:/abs/path", "fd://N".',
        flag=Flag("-b/--bind", "ADDR", repeat=True),
    )
    workers: int = setting(
        Workers(),
        2,
        'Worker processes; "auto": one per CPU this process may use (affinity, cgroup quota).',
        flag=Flag("-w/--workers", "N"),
    )
    backlog: int = setting(Integer(1), 2048, "listen() backlog of each socket.")
    reuse_port: bool = setting(
        Boolean(),
        sys.platform.startswith("linux"),
        "One SO_REUSEPORT socket per worker slot, so the kernel spreads connections.",
        default_doc="true on Linux, false elsewhere",
    )
    user: str | None = setting(_NAME, None, "Drop privileges to this user after binding.")
    group: str | None = setting(_NAME, None, "Drop privileges to this group after binding.")
    pidfile: str | None = setting(_PATH, None, "Write the master's PID to this file.")
    graceful_timeout: float = setting(
        Duration(), 30, "On stop or reload, time given to in-flight work before forcing."
    )
    worker_timeout: float = setting(
        Duration(positive=True), 30, "A worker whose event loop is blocked this long is replaced."
    )
    max_requests: int = setting(
        Integer(0), 0, "Recycle a worker after this many requests (0 = never)."
    )
    max_requests_jitter: int = setting(
        Integer(0), 0, "Add up to this many requests, at random, to max_requests per worker."
    )
    max_rss: int = setting(
        Size(), 0, "Recycle a worker whose resident memory exceeds this (0 = off)."
    )
    preload: bool = setting(Boolean(), False, "Import the app in the master before forking.")
    unix_socket_mode: int = setting(OctalMode(), "0660", "Permissions of unix: sockets.")
    unix_socket_owner: str | None = setting(
        Optional(Pattern(r"[^:\s]+(:[^:\s]+)?", '"user" or "user:group"')),
        None,
        'Owner of unix: sockets, "user" or "user:group".',
    )


@dataclass(frozen=True, slots=True)
class HooksConfig:
    """Server hooks, each a "module:callable" imported by the master or the worker."""

    on_starting: str | None = setting(_HOOK, None, "Called in the master before binding.")
    on_reload: str | None = setting(_HOOK, None, "Called in the master on SIGHUP.")
    worker_started: str | None = setting(_HOOK, None, "Called in a worker once it serves.")
    worker_exited: str | None = setting(_HOOK, None, "Called in the master when a worker exits.")


@dataclass(frozen=True, slots=True)
class ProxyHeadersConfig:
    """Which peers may set X-Forwarded-* and Forwarded (RFC 7239)."""

    trusted: tuple[str, ...] = setting(
        ListOf(Network(), 'a list of IP addresses, CIDR networks or "*"', single_ok=True),
        ["127.0.0.1", "::1"],
        "Peers whose forwarding headers the proxy_headers middleware believes unless its"
        ' own `trusted` is set: IPs, CIDRs, or "*" for any.',
    )


@dataclass(frozen=True, slots=True)
class HttpConfig:
    """HTTP/1.1 limits and timeouts, per connection."""

    keepalive_timeout: float = setting(
        Duration(), 5, "Idle time before a keep-alive connection closes."
    )
    header_timeout: float = setting(
        Duration(positive=True), 10, "The whole request head must arrive within this."
    )
    body_timeout: float = setting(
        Duration(positive=True), 30, "Longest pause between request body bytes."
    )
    max_request_line: int = setting(Integer(1), 8192, "Longest request line, in bytes (414 above).")
    max_header_size: int = setting(Size(1), "64KiB", "Largest header block, in bytes (431 above).")
    max_headers: int = setting(Integer(1), 100, "Most header fields in one request (431 above).")
    max_body_size: int = setting(
        Size(1), "10MiB", "Largest request body, by Content-Length or streamed (413 above)."
    )
    max_connections: int = setting(
        Integer(1), 10000, "Open connections per worker; above it the worker stops accepting."
    )
    server_header: str | None = setting(
        Optional(HeaderValue()), "covetd", "Value of the Server header; null sends none."
    )
    proxy_headers: ProxyHeadersConfig = section(ProxyHeadersConfig)


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """TLS for every TCP listener; off unless certfile and keyfile are set."""

    certfile: str | None = setting(Optional(ExistingFile()), None, "Certificate chain (PEM).")
    keyfile: str | None = setting(Optional(ExistingFile()), None, "Private key (PEM).")
    password: str | None = setting(
        Optional(Text()), None, "Password of an encrypted keyfile.", secret=mask_all
    )
    ca_certs: str | None = setting(
        Optional(ExistingFile()), None, "CA bundle (PEM) to verify client certificates."
    )
    cert_reqs: str = setting(
        Choice("none", "optional", "required"),
        "none",
        "Whether clients must present a certificate.",
    )
    ciphers: str | None = setting(
        Optional(Text("an OpenSSL cipher list")), None, "OpenSSL cipher list; null keeps Python's."
    )
    minimum_version: str = setting(
        Choice("TLSv1.2", "TLSv1.3"), "TLSv1.2", "Oldest TLS version accepted."
    )

    def __post_init__(self) -> None:
        if self.certfile is not None and self.keyfile is None:
            raise InvalidValue("set tls.keyfile too (both or neither)", key="certfile")
        if self.keyfile is not None and self.certfile is None:
            raise InvalidValue("set tls.certfile too (both or neither)", key="keyfile")


@dataclass(frozen=True, slots=True)
class BroadcastConfig:
    """Where WebSocket room messages travel between workers and hosts."""

    backend: str = setting(
        Choice("local", "redis", "postgres"),
        "local",
        "local: the workers of this host; redis or postgres: across hosts.",
    )
    url: str | None = setting(
        Optional(Url("redis", "rediss", "unix", "postgres", "postgresql")),
        None,
        "Server URL of the redis or postgres backend.",
        secret=mask_url,
    )

    def __post_init__(self) -> None:
        schemes = BROADCAST_URL_SCHEMES.get(self.backend)
        if schemes is None:
            return
        if self.url is None:
            raise InvalidValue(f"the {self.backend} backend needs a url", key="url")
        if self.url.partition("://")[0].lower() not in schemes:
            expected = " or ".join(f"{scheme}://" for scheme in schemes)
            raise InvalidValue(f"the {self.backend} backend needs a {expected} url", key="url")


@dataclass(frozen=True, slots=True)
class WebsocketConfig:
    """WebSocket limits, keep-alive pings and broadcast."""

    max_message_size: int = setting(
        Size(1), "1MiB", "Largest message, after reassembly and inflation (close 1009 above)."
    )
    ping_interval: float = setting(Duration(), 20, "Ping an idle peer this often (0 = never).")
    ping_timeout: float = setting(
        Duration(positive=True), 20, "Close a peer whose pong is this late."
    )
    close_timeout: float = setting(Duration(), 5, "Wait this long for the peer's close frame.")
    compression: bool = setting(Boolean(), True, "Accept permessage-deflate (RFC 7692).")
    max_send_buffer: int = setting(
        Size(1), "1MiB", "Unsent bytes a connection may hold; a room member over it is dropped."
    )
    message_rate: float = setting(
        PositiveNumber(allow_zero=True), 0, "Messages a client may send per second (0 = no limit)."
    )
    broadcast: BroadcastConfig = section(BroadcastConfig)


@dataclass(frozen=True, slots=True)
class DatabaseConfig:
    """One asyncpg pool per worker."""

    dsn: str = setting(_POSTGRES_URL, REQUIRED, "postgres:// URL of the database.", secret=mask_url)
    min_size: int = setting(Integer(0), 1, "Connections opened when the pool starts.")
    max_size: int = setting(Integer(1), 10, "Most connections (at least min_size).")
    max_inactive_connection_lifetime: float = setting(
        Duration(), 300, "Close connections idle this long (0 = never)."
    )
    command_timeout: float | None = setting(
        Optional(Duration(positive=True)), None, "Default timeout of a query; null = none."
    )
    acquire_timeout: float = setting(
        Duration(positive=True), 5, "Longest wait for a free connection."
    )
    statement_cache_size: int = setting(
        Integer(0), 100, "Prepared statements cached per connection."
    )
    server_settings: Mapping[str, str] = setting(
        TextMapping(), {}, "PostgreSQL run-time parameters set on each connection."
    )
    ssl: str | None = setting(
        Optional(Choice("disable", "prefer", "require", "verify-ca", "verify-full")),
        None,
        "SSL mode; null leaves it to the dsn.",
    )
    connect: str = setting(
        Choice("eager", "lazy"), "eager", "eager: connect at worker start; lazy: on first use."
    )

    def __post_init__(self) -> None:
        if self.max_size < self.min_size:
            message = f"must be at least min_size ({self.min_size}), got {self.max_size}"
            raise InvalidValue(message, key="max_size")


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """Prometheus metrics, aggregated over workers and served by the master."""

    enabled: bool = setting(Boolean(), True, "Collect and serve metrics.")
    bind: BindAddress = setting(
        Bind(tcp_only=True), "127.0.0.1:9101", "Address of /metrics, /healthz and /readyz."
    )
    path: str | None = setting(
        Optional(Pattern(r"/[^\s?#]*", 'a URL path starting with "/"')),
        None,
        "Also serve metrics on the app's port at this path.",
    )
    multiproc_dir: str | None = setting(
        _PATH, None, "Directory shared by the workers' metric files; null = a private temp dir."
    )
    buckets: tuple[float, ...] = setting(
        Increasing(),
        [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
        "Request duration histogram bounds, in seconds.",
    )


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    """Error and access logs."""

    level: str = setting(
        Choice(*LOG_LEVELS), "info", "Least severe level logged.", flag=Flag("--log-level", "LEVEL")
    )
    format: str = setting(
        Choice("json", "text"), "json", "json: one object per line; text: for people."
    )
    access_log: bool = setting(
        Boolean(),
        True,
        "One line per request (the access_log middleware, outermost; JSON, or the"
        " combined format with format: text), unless middleware: has its own access_log.",
    )
    access_log_file: str | None = setting(
        _PATH, None, "Access log file (reopened on USR1); null = stdout."
    )
    error_log_file: str | None = setting(_PATH, None, "Error log file; null = stderr.")


@dataclass(frozen=True, slots=True)
class Config:
    """The whole, resolved configuration (see ``load_config``).

    ``source`` is the file it came from (None for defaults only); like
    ``MiddlewareEntry.where`` it is provenance and is left out of equality.
    """

    app: str | None = setting(
        Optional(ImportPath(allow_call=True)),
        None,
        'The application: "module:attr", or "module:factory()" to call a factory.',
        flag=Flag("APP", "APP"),
    )
    app_dir: str = setting(
        Text("a directory"),
        ".",
        "Directory put first on sys.path before importing the app.",
        flag=Flag("--app-dir", "DIR"),
    )
    server: ServerConfig = section(ServerConfig)
    hooks: HooksConfig = section(HooksConfig)
    http: HttpConfig = section(HttpConfig)
    tls: TlsConfig = section(TlsConfig)
    websocket: WebsocketConfig = section(WebsocketConfig)
    middleware: tuple[MiddlewareEntry, ...] = middleware_list(
        BUILTIN_MIDDLEWARE,
        "Applied in order, outermost first. Each entry is a mapping with one key, a built-in "
        'name or an importable "module:Class", whose value is its options (a mapping, or '
        "null for none). Options are checked by the middleware itself; ${ENV} applies.",
    )
    database: Mapping[str, DatabaseConfig] = section_map(
        DatabaseConfig,
        "PostgreSQL pools by name; the name is how the app asks for a pool.",
        name_doc="pool name",
    )
    metrics: MetricsConfig = section(MetricsConfig)
    logging: LoggingConfig = section(LoggingConfig)
    source: str | None = field(default=None, compare=False)

    def to_dict(self, *, mask_secrets: bool = True) -> dict[str, object]:
        """Plain data in the YAML shape, for ``--print-config``; loads back equal.

        Secrets (passwords in URLs, ``tls.password``, secret-looking middleware
        options) are ``***`` unless ``mask_secrets`` is false.
        """
        return config_to_dict(self, mask_secrets=mask_secrets)
