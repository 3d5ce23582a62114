"""covetd configuration: one YAML file + ``${ENV}`` + command-line flags -> ``Config``.

``load_config`` returns frozen dataclasses with every value resolved (bytes, seconds,
``BindAddress``); every problem is a one-line ``ConfigError`` naming file, line and key.
Each setting is declared once, in ``schema.py``.
"""

from covetd.config.bind import BindAddress
from covetd.config.errors import ConfigError
from covetd.config.loader import load_config
from covetd.config.middleware import MiddlewareEntry
from covetd.config.schema import (
    BUILTIN_MIDDLEWARE,
    BroadcastConfig,
    Config,
    DatabaseConfig,
    HooksConfig,
    HttpConfig,
    LoggingConfig,
    MetricsConfig,
    ProxyHeadersConfig,
    ServerConfig,
    TlsConfig,
    WebsocketConfig,
)

__all__ = [
    "BUILTIN_MIDDLEWARE",
    "BindAddress",
    "BroadcastConfig",
    "Config",
    "ConfigError",
    "DatabaseConfig",
    "HooksConfig",
    "HttpConfig",
    "LoggingConfig",
    "MetricsConfig",
    "MiddlewareEntry",
    "ProxyHeadersConfig",
    "ServerConfig",
    "TlsConfig",
    "WebsocketConfig",
    "load_config",
]
