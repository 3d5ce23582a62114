"""Each section of the schema: defaults, good and bad values, and cross-key invariants."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType

import pytest

from covetd.config import (
    BindAddress,
    Config,
    DatabaseConfig,
    TlsConfig,
    load_config,
)
from covetd.config.fields import iter_settings
from covetd.config.types import available_cpus

Loader = Callable[..., Config]  # the ``load`` fixture of conftest.py
ErrorOf = Callable[..., str]  # the ``error_of`` fixture

KIB, MIB = 1024, 1024**2


def test_every_setting_has_a_doc_line_and_a_type() -> None:
    for key, setting in iter_settings(Config):
        assert setting.doc and "\n" not in setting.doc, key
        assert setting.type.description, key


def test_config_is_frozen() -> None:
    config = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.app = "x:y"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.server.workers = 3  # type: ignore[misc]


# --- top level -------------------------------------------------------------------------


def test_app_and_app_dir(load: Loader) -> None:
    assert (Config().app, Config().app_dir) == (None, ".")
    config = load("app: myproject.asgi:create_app()\napp_dir: src\n")
    assert (config.app, config.app_dir) == ("myproject.asgi:create_app()", "src")


def test_bad_app(error_of: ErrorOf) -> None:
    assert error_of("app: myproject\n") == (
        'c.yaml:1: app: expected "module:attr" or "module:factory()", got "myproject": '
        "missing ':' between the module and the attribute"
    )


# --- server ----------------------------------------------------------------------------


def test_server_defaults() -> None:
    server = Config().server
    assert server.bind == (BindAddress("tcp", host="127.0.0.1", port=8000),)
    assert (server.workers, server.backlog, server.preload) == (2, 2048, False)
    assert server.reuse_port is sys.platform.startswith("linux")
    assert (server.user, server.group, server.pidfile, server.unix_socket_owner) == (None,) * 4
    assert (server.graceful_timeout, server.worker_timeout) == (30.0, 30.0)
    assert (server.max_requests, server.max_requests_jitter, server.max_rss) == (0, 0, 0)
    assert server.unix_socket_mode == 0o660


def test_server_values(load: Loader) -> None:
    text = """\
        server:
          bind: ["0.0.0.0:80", "[::]:80", "unix:/run/covetd.sock", "fd://3"]
          workers: auto
          backlog: 128
          reuse_port: false
          user: www-data
          group: 33
          pidfile: /run/covetd.pid
          graceful_timeout: 1m
          worker_timeout: 45s
          max_requests: 10000
          max_requests_jitter: 500
          max_rss: 512MiB
          preload: yes
          unix_socket_mode: 0600
          unix_socket_owner: www-data:www-data
        """
    server = load(text).server
    assert [str(address) for address in server.bind] == [
        "0.0.0.0:80",
        "[::]:80",
        "unix:/run/covetd.sock",
        "fd://3",
    ]
    assert (server.workers, server.backlog, server.reuse_port) == (available_cpus(), 128, False)
    assert (server.user, server.group, server.pidfile) == ("www-data", "33", "/run/covetd.pid")
    assert (server.graceful_timeout, server.worker_timeout) == (60.0, 45.0)
    assert (server.max_requests, server.max_requests_jitter) == (10000, 500)
    assert (server.max_rss, server.preload) == (512 * MIB, True)
    assert (server.unix_socket_mode, server.unix_socket_owner) == (0o600, "www-data:www-data")


def test_bind_takes_a_single_string(load: Loader) -> None:
    assert load("server: {bind: '0.0.0.0:8080'}\n").server.bind == (
        BindAddress("tcp", host="0.0.0.0", port=8080),
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "server: {bind: []}\n",
            "c.yaml:1: server.bind: expected an address or a list of addresses",
        ),
        (
            "server:\n  bind:\n    - 127.0.0.1:1\n    - 127.0.0.1:1\n",
            'c.yaml:4: server.bind[1]: "127.0.0.1:1" is listed twice',
        ),
        (
            "server: {workers: 0}\n",
            'c.yaml:1: server.workers: expected a positive integer or "auto"',
        ),
        ("server: {workers: true}\n", "c.yaml:1: server.workers: expected a positive integer"),
        ("server: {backlog: 0}\n", "c.yaml:1: server.backlog: expected a positive integer, got 0"),
        (
            "server: {reuse_port: 'true'}\n",
            'c.yaml:1: server.reuse_port: expected true or false, got "true"',
        ),
        ("server: {reuse_port: 1}\n", "c.yaml:1: server.reuse_port: expected true or false, got 1"),
        (
            "server: {graceful_timeout: -1}\n",
            "c.yaml:1: server.graceful_timeout: expected a duration",
        ),
        ("server: {worker_timeout: 0}\n", "c.yaml:1: server.worker_timeout: expected a positive"),
        ("server: {max_requests: -5}\n", "c.yaml:1: server.max_requests: expected a non-negative"),
        ("server: {max_rss: lots}\n", "c.yaml:1: server.max_rss: expected a size in bytes"),
        (
            "server: {unix_socket_mode: 660}\n",
            "c.yaml:1: server.unix_socket_mode: expected a file mode",
        ),
        (
            "server: {unix_socket_owner: 'a:b:c'}\n",
            'c.yaml:1: server.unix_socket_owner: expected "user"',
        ),
        ("server: {user: ''}\n", 'c.yaml:1: server.user: expected a name or numeric id, got ""'),
    ],
)
def test_server_rejects(error_of: ErrorOf, text: str, expected: str) -> None:
    assert error_of(text).startswith(expected)


def test_quoted_octal_mode(load: Loader) -> None:
    assert load("server: {unix_socket_mode: '0660'}\n").server.unix_socket_mode == 0o660


# --- hooks -----------------------------------------------------------------------------


def test_hooks(load: Loader, error_of: ErrorOf) -> None:
    assert Config().hooks.on_starting is None
    hooks = load("hooks: {on_starting: ops.hooks:starting, worker_exited: ops.hooks:gone}\n").hooks
    assert (hooks.on_starting, hooks.worker_exited) == ("ops.hooks:starting", "ops.hooks:gone")
    assert (hooks.on_reload, hooks.worker_started) == (None, None)
    assert error_of("hooks: {on_reload: 'ops.hooks:reload()'}\n").startswith(
        'c.yaml:1: hooks.on_reload: expected "module:callable", got "ops.hooks:reload()"'
    )


# --- http ------------------------------------------------------------------------------


def test_http_defaults() -> None:
    http = Config().http
    assert (http.keepalive_timeout, http.header_timeout, http.body_timeout) == (5.0, 10.0, 30.0)
    assert (http.max_request_line, http.max_header_size, http.max_headers) == (8192, 64 * KIB, 100)
    assert (http.max_body_size, http.max_connections) == (10 * MIB, 10000)
    assert http.server_header == "covetd"
    assert http.proxy_headers.trusted == ("127.0.0.1", "::1")


def test_http_values(load: Loader) -> None:
    text = """\
        http:
          keepalive_timeout: 0
          header_timeout: 2.5
          body_timeout: 500ms
          max_header_size: 16K
          max_body_size: 100MB
          server_header: null
          proxy_headers:
            trusted: ["10.0.0.0/8", "::1", "*"]
        """
    http = load(text).http
    assert (http.keepalive_timeout, http.header_timeout, http.body_timeout) == (0.0, 2.5, 0.5)
    assert (http.max_header_size, http.max_body_size) == (16 * KIB, 100_000_000)
    assert http.server_header is None
    assert http.proxy_headers.trusted == ("10.0.0.0/8", "::1", "*")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "http: {header_timeout: 0}\n",
            "c.yaml:1: http.header_timeout: expected a positive duration",
        ),
        ("http: {max_body_size: 0}\n", "c.yaml:1: http.max_body_size: expected a positive size"),
        ("http: {max_headers: -1}\n", "c.yaml:1: http.max_headers: expected a positive integer"),
        (
            'http: {server_header: "covetd\\r\\nX-Injected: 1"}\n',
            "c.yaml:1: http.server_header: expected printable ASCII text (no control characters)",
        ),
        ("http: {server_header: ''}\n", "c.yaml:1: http.server_header: expected printable ASCII"),
        (
            "http:\n  proxy_headers:\n    trusted:\n      - 10.0.0.0/8\n      - 10.0.0.1/8\n",
            'c.yaml:5: http.proxy_headers.trusted[1]: "10.0.0.1/8" has host bits set',
        ),
        (
            "http: {proxy_headers: {trusted: [lan]}}\n",
            "c.yaml:1: http.proxy_headers.trusted[0]: expected",
        ),
    ],
)
def test_http_rejects(error_of: ErrorOf, text: str, expected: str) -> None:
    assert error_of(text).startswith(expected)


# --- tls -------------------------------------------------------------------------------


@pytest.fixture
def pem_files(in_tmp: Path) -> Path:
    for name in ("cert.pem", "key.pem", "ca.pem"):
        (in_tmp / name).write_text("-----BEGIN-----\n")
    return in_tmp


def test_tls_defaults_are_off() -> None:
    tls = Config().tls
    assert (tls.certfile, tls.keyfile, tls.password, tls.ca_certs, tls.ciphers) == (None,) * 5
    assert (tls.cert_reqs, tls.minimum_version) == ("none", "TLSv1.2")


def test_tls_values(load: Loader, pem_files: Path) -> None:
    text = """\
        tls:
          certfile: cert.pem
          keyfile: key.pem
          password: ${KEY_PASSWORD}
          ca_certs: ca.pem
          cert_reqs: REQUIRED
          ciphers: ECDHE+AESGCM
          minimum_version: tlsv1.3
        """
    tls = load(text, env={"KEY_PASSWORD": "hunter2"}).tls
    assert (tls.certfile, tls.keyfile, tls.password, tls.ca_certs) == (
        "cert.pem",
        "key.pem",
        "hunter2",
        "ca.pem",
    )
    assert (tls.cert_reqs, tls.ciphers, tls.minimum_version) == (
        "required",
        "ECDHE+AESGCM",
        "TLSv1.3",
    )


def test_tls_needs_both_certfile_and_keyfile(error_of: ErrorOf, pem_files: Path) -> None:
    assert error_of("tls:\n  ca_certs: ca.pem\n  certfile: cert.pem\n") == (
        "c.yaml:3: tls.certfile: set tls.keyfile too (both or neither)"
    )
    assert error_of("tls:\n  keyfile: key.pem\n") == (
        "c.yaml:2: tls.keyfile: set tls.certfile too (both or neither)"
    )
    with pytest.raises(ValueError, match="both or neither"):
        TlsConfig(certfile="cert.pem")


def test_tls_files_must_exist(error_of: ErrorOf, pem_files: Path) -> None:
    assert error_of("tls:\n  certfile: cert.pem\n  keyfile: missing.pem\n") == (
        'c.yaml:3: tls.keyfile: file not found: "missing.pem"'
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "tls: {cert_reqs: always}\n",
            'expected one of "none", "optional" or "required", got "always"',
        ),
        ("tls: {minimum_version: TLSv1.1}\n", 'expected "TLSv1.2" or "TLSv1.3", got "TLSv1.1"'),
    ],
)
def test_tls_rejects(error_of: ErrorOf, text: str, expected: str) -> None:
    assert error_of(text).endswith(expected)


# --- websocket -------------------------------------------------------------------------


def test_websocket_defaults() -> None:
    ws = Config().websocket
    assert (ws.max_message_size, ws.ping_interval, ws.ping_timeout) == (MIB, 20.0, 20.0)
    assert (ws.close_timeout, ws.compression) == (5.0, True)
    assert (ws.broadcast.backend, ws.broadcast.url) == ("local", None)


def test_websocket_values(load: Loader) -> None:
    text = """\
        websocket:
          max_message_size: 64KiB
          ping_interval: 0
          compression: false
          broadcast: {backend: redis, url: "redis://cache:6379/0"}
        """
    ws = load(text).websocket
    assert (ws.max_message_size, ws.ping_interval, ws.compression) == (64 * KIB, 0.0, False)
    assert (ws.broadcast.backend, ws.broadcast.url) == ("redis", "redis://cache:6379/0")


def test_broadcast_backends_need_a_matching_url(error_of: ErrorOf, load: Loader) -> None:
    assert error_of("websocket:\n  broadcast:\n    backend: redis\n") == (
        "c.yaml:3: websocket.broadcast.url: the redis backend needs a url"
    )
    assert error_of(
        "websocket:\n  broadcast:\n    backend: postgres\n    url: redis://cache\n"
    ) == (
        "c.yaml:4: websocket.broadcast.url: the postgres backend needs a postgres:// or "
        "postgresql:// url"
    )
    config = load("websocket: {broadcast: {backend: postgres, url: 'postgresql://db/app'}}\n")
    assert config.websocket.broadcast.url == "postgresql://db/app"


def test_websocket_rejects(error_of: ErrorOf) -> None:
    assert error_of("websocket: {ping_timeout: 0}\n").startswith(
        "c.yaml:1: websocket.ping_timeout: expected a positive duration"
    )
    assert error_of("websocket: {broadcast: {backend: kafka}}\n").endswith(
        'expected one of "local", "redis" or "postgres", got "kafka"'
    )


# --- database --------------------------------------------------------------------------


def test_database_pools(load: Loader) -> None:
    text = """\
        database:
          default:
            dsn: ${DATABASE_URL}
            min_size: 0
            max_size: 20
            max_inactive_connection_lifetime: 10m
            command_timeout: 5
            acquire_timeout: 2.5
            statement_cache_size: 0
            server_settings: {jit: off, application_name: covetd, statement_timeout: 5000}
            ssl: verify-full
            connect: lazy
          analytics: {dsn: "postgresql://ro@replica/app"}
        """
    pools = load(text, env={"DATABASE_URL": "postgres://app:pw@db/app"}).database
    assert list(pools) == ["default", "analytics"]
    assert pools["default"] == DatabaseConfig(
        dsn="postgres://app:pw@db/app",
        min_size=0,
        max_size=20,
        max_inactive_connection_lifetime=600.0,
        command_timeout=5.0,
        acquire_timeout=2.5,
        statement_cache_size=0,
        server_settings=MappingProxyType(
            {"jit": "off", "application_name": "covetd", "statement_timeout": "5000"}
        ),
        ssl="verify-full",
        connect="lazy",
    )
    analytics = pools["analytics"]
    assert (analytics.min_size, analytics.max_size, analytics.command_timeout) == (1, 10, None)
    assert (analytics.ssl, analytics.connect, dict(analytics.server_settings)) == (
        None,
        "eager",
        {},
    )
    assert isinstance(pools, MappingProxyType)


def test_database_defaults_to_no_pools() -> None:
    assert dict(Config().database) == {}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "database:\n  default:\n    min_size: 1\n",
            "c.yaml:3: database.default.dsn: required key is missing",
        ),
        ("database:\n  default:\n", "c.yaml:2: database.default.dsn: required key is missing"),
        (
            "database:\n  my-db: {dsn: 'postgres://x'}\n",
            "c.yaml:2: database.my-db: a pool name must be an identifier (letters, digits and _)",
        ),
        (
            "database:\n  default:\n    dsn: postgres://x\n    min_size: 5\n    max_size: 2\n",
            "c.yaml:5: database.default.max_size: must be at least min_size (5), got 2",
        ),
        (
            "database:\n  default: {dsn: 'mysql://x'}\n",
            "c.yaml:2: database.default.dsn: expected a URL starting with postgres:// or "
            'postgresql://, got "mysql://x"',
        ),
        (
            "database:\n  default: {dsn: 'postgres://x', ssl: on}\n",
            "c.yaml:2: database.default.ssl: expected one of",
        ),
        ("database:\n  default: {dsn: 'postgres://x', connect: later}\n", 'got "later"'),
        ("database: [default]\n", "c.yaml:1: database: expected a mapping, got a list"),
    ],
)
def test_database_rejects(error_of: ErrorOf, text: str, expected: str) -> None:
    message = error_of(text)
    assert message.startswith(expected) or message.endswith(expected)


# --- metrics and logging ---------------------------------------------------------------


def test_metrics(load: Loader) -> None:
    metrics = Config().metrics
    assert (metrics.enabled, str(metrics.bind), metrics.path, metrics.multiproc_dir) == (
        True,
        "127.0.0.1:9101",
        None,
        None,
    )
    assert metrics.buckets[0] == 0.001
    assert metrics.buckets[-1] == 10.0
    assert len(metrics.buckets) == 13
    text = (
        "metrics: {enabled: false, bind: '0.0.0.0:9100', path: /metrics, buckets: [0.1, 1, 10]}\n"
    )
    metrics = load(text).metrics
    assert (metrics.enabled, metrics.bind.port, metrics.path) == (False, 9100, "/metrics")
    assert metrics.buckets == (0.1, 1.0, 10.0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "metrics: {bind: 'unix:/run/m.sock'}\n",
            'c.yaml:1: metrics.bind: expected "host:port" (TCP only here)',
        ),
        (
            "metrics: {path: metrics}\n",
            'c.yaml:1: metrics.path: expected a URL path starting with "/"',
        ),
        (
            "metrics:\n  buckets:\n    - 1\n    - 0.5\n",
            "c.yaml:4: metrics.buckets[1]: bounds must increase",
        ),
        (
            "metrics: {buckets: [0, 1]}\n",
            "c.yaml:1: metrics.buckets[0]: expected a positive number, got 0",
        ),
    ],
)
def test_metrics_rejects(error_of: ErrorOf, text: str, expected: str) -> None:
    assert error_of(text).startswith(expected)


def test_logging(load: Loader, error_of: ErrorOf) -> None:
    logging = Config().logging
    assert (logging.level, logging.format, logging.access_log) == ("info", "json", True)
    assert (logging.access_log_file, logging.error_log_file) == (None, None)
    logging = load("logging: {level: WARNING, format: text, access_log: false}\n").logging
    assert (logging.level, logging.format, logging.access_log) == ("warning", "text", False)
    assert error_of("logging: {level: verbose}\n") == (
        'c.yaml:1: logging.level: expected one of "debug", "info", "warning", "error" or '
        '"critical", got "verbose"'
    )


def test_full_example_from_the_design_loads(in_tmp: Path) -> None:
    Path("covetd.yaml").write_text(
        """\
app: examples.hello:app
app_dir: .
server:
  bind: ["127.0.0.1:8000"]
  workers: 2
  backlog: 2048
  reuse_port: true
  user: null
  group: null
  pidfile: null
  graceful_timeout: 30
  worker_timeout: 30
  max_requests: 0
  max_requests_jitter: 0
  preload: false
http:
  keepalive_timeout: 5
  header_timeout: 10
  max_request_line: 8192
  max_header_size: 65536
  max_headers: 100
  max_body_size: "10MiB"
  max_connections: 10000
  proxy_headers: {trusted: ["127.0.0.1"]}
tls: {certfile: null, keyfile: null}
websocket:
  max_message_size: "1MiB"
  ping_interval: 20
  ping_timeout: 20
  compression: true
  broadcast: {backend: local, url: null}
middleware:
  - proxy_headers: {}
  - cors: {allow_origins: ["https://example.com"]}
  - gzip: {minimum_size: 500}
  - myproject.middleware:Timing: {option: 1}
database:
  default: {dsn: "${DATABASE_URL}", min_size: 1, max_size: 10, command_timeout: 5}
metrics:
  enabled: true
  bind: "127.0.0.1:9101"
logging:
  level: info
  format: json
  access_log: true
"""
    )
    config = load_config("covetd.yaml", environ={"DATABASE_URL": "postgres://db/app"})
    assert config.app == "examples.hello:app"
    assert [entry.name for entry in config.middleware][-1] == "myproject.middleware:Timing"
