"""``Config.to_dict``: YAML-shaped, loads back equal, and secrets masked."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml

from covetd.config import Config, load_config

Loader = Callable[..., Config]  # the ``load`` fixture of conftest.py

RICH = """\
app: myproject.asgi:create_app()
app_dir: src
server:
  bind: ["0.0.0.0:8000", "[::1]:8001", "unix:/run/covetd.sock", "fd://3"]
  workers: 4
  reuse_port: false
  user: "1000"
  graceful_timeout: 1.5
  max_rss: 512MiB
  unix_socket_mode: "0600"
  unix_socket_owner: www-data:www-data
hooks: {on_starting: ops.hooks:starting}
http:
  body_timeout: 250ms
  max_header_size: 64KB
  max_body_size: 12345
  server_header: null
  proxy_headers: {trusted: ["10.0.0.0/8", "*"]}
tls: {ciphers: ECDHE+AESGCM, minimum_version: TLSv1.3}
websocket:
  ping_interval: 0
  broadcast: {backend: redis, url: "redis://cache:6379/0"}
middleware:
  - proxy_headers:
  - cors: {allow_origins: ["https://example.com"], allow_credentials: true}
  - myproject.middleware:Timing: {nested: {list: [1, 2.5, null]}}
database:
  default:
    dsn: postgres://app@db/app
    server_settings: {jit: "off"}
    command_timeout: 5
  replica: {dsn: "postgres://ro@replica/app", connect: lazy, ssl: require}
metrics: {path: /metrics, buckets: [0.5, 1, 2]}
logging: {level: debug, format: text, access_log_file: /var/log/access.log}
"""


def dump_yaml(config: Config, **kwargs: bool) -> str:
    return yaml.safe_dump(config.to_dict(**kwargs), sort_keys=False)


def test_defaults_in_yaml_shape() -> None:
    data = Config().to_dict()
    assert list(data) == [
        "app",
        "app_dir",
        "server",
        "hooks",
        "http",
        "tls",
        "websocket",
        "middleware",
        "database",
        "metrics",
        "logging",
    ]
    server = data["server"]
    assert isinstance(server, dict)
    assert server["bind"] == ["127.0.0.1:8000"]
    assert server["unix_socket_mode"] == "0660"
    http = data["http"]
    assert isinstance(http, dict)
    assert (http["max_header_size"], http["max_body_size"]) == ("64KiB", "10MiB")
    assert http["proxy_headers"] == {"trusted": ["127.0.0.1", "::1"]}
    assert (data["middleware"], data["database"]) == ([], {})


def test_source_is_not_part_of_the_dict(load: Loader) -> None:
    assert "source" not in load("app: a:b\n").to_dict()


def test_defaults_round_trip(in_tmp: Path) -> None:
    Path("printed.yaml").write_text(dump_yaml(Config()))
    assert load_config("printed.yaml") == Config()


def test_rich_config_round_trips(load: Loader) -> None:
    original = load(RICH)
    Path("printed.yaml").write_text(dump_yaml(original))
    reloaded = load_config("printed.yaml")
    assert reloaded == original
    assert reloaded.source == "printed.yaml"
    assert [entry.where for entry in reloaded.middleware] != [e.where for e in original.middleware]


def test_secrets_are_masked(load: Loader, in_tmp: Path) -> None:
    for name in ("cert.pem", "key.pem"):
        Path(name).write_text("x")
    text = """\
        tls: {certfile: cert.pem, keyfile: key.pem, password: "${KEY_PASSWORD}"}
        websocket:
          broadcast: {backend: redis, url: "redis://:r3dis@cache:6379/0"}
        middleware:
          - sessions: {secret_key: "${SESSION_SECRET}", cookie_name: sid}
          - auth: {backends: [{url: "https://u:pw@idp/x", api_token: abc}]}
        database:
          default: {dsn: "postgres://app:pg-pass@db/app?password=again"}
        """
    env = {"KEY_PASSWORD": "k3y", "SESSION_SECRET": "s3ssion"}
    printed = dump_yaml(load(text, env=env))
    for secret in ("k3y", "r3dis", "s3ssion", "pw@", "abc", "pg-pass", "again"):
        assert secret not in printed
    data = yaml.safe_load(printed)
    assert data["tls"]["password"] == "***"
    assert data["websocket"]["broadcast"]["url"] == "redis://:***@cache:6379/0"
    assert data["middleware"][0] == {"sessions": {"secret_key": "***", "cookie_name": "sid"}}
    assert data["middleware"][1]["auth"]["backends"][0] == {
        "url": "https://u:***@idp/x",
        "api_token": "***",
    }
    assert data["database"]["default"]["dsn"] == "postgres://app:***@db/app?password=***"


def test_secrets_can_be_revealed(load: Loader) -> None:
    config = load('tls: {password: "k3y"}\ndatabase: {default: {dsn: "postgres://a:b@c/d"}}\n')
    data = config.to_dict(mask_secrets=False)
    assert data["tls"] == {**Config().to_dict()["tls"], "password": "k3y"}  # type: ignore[dict-item]
    assert "postgres://a:b@c/d" in yaml.safe_dump(data)


def test_unset_secrets_stay_null() -> None:
    data = Config().to_dict()
    assert data["tls"]["password"] is None  # type: ignore[index]
