"""The public surface of covetd.config is exactly ``__all__``."""

from __future__ import annotations

import covetd.config


def test_public_names() -> None:
    assert sorted(covetd.config.__all__) == [
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
    for name in covetd.config.__all__:
        assert getattr(covetd.config, name) is not None
