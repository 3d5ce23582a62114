"""The middleware list: names (built-in or import path), options, ``where``."""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType

import pytest

from covetd.config import BUILTIN_MIDDLEWARE, Config, MiddlewareEntry

Loader = Callable[..., Config]  # the ``load`` fixture of conftest.py
ErrorOf = Callable[..., str]  # the ``error_of`` fixture


def test_builtin_middleware_names() -> None:
    assert BUILTIN_MIDDLEWARE == (
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


def test_middleware_entries(load: Loader) -> None:
    text = """\
        middleware:
          - proxy_headers: {}
          - cors: {allow_origins: ["https://example.com"], max_age: 600}
          - gzip:
          - sessions:
              secret_key: ${SESSION_SECRET}
              https_only: ${HTTPS_ONLY:-true}
          - myproject.middleware:Timing: {option: 1}
        """
    entries = load(text, env={"SESSION_SECRET": "s3"}).middleware
    assert entries == (
        MiddlewareEntry("proxy_headers", {}),
        MiddlewareEntry("cors", {"allow_origins": ("https://example.com",), "max_age": 600}),
        MiddlewareEntry("gzip", {}),
        MiddlewareEntry("sessions", {"secret_key": "s3", "https_only": True}),
        MiddlewareEntry("myproject.middleware:Timing", {"option": 1}),
    )
    assert [entry.where for entry in entries] == [f"c.yaml:{line}" for line in (2, 3, 4, 5, 8)]
    assert [entry.builtin for entry in entries] == [True, True, True, True, False]


def test_middleware_options_are_read_only(load: Loader) -> None:
    entry = load("middleware:\n  - cors: {allow_origins: [a], nested: {b: 1}}\n").middleware[0]
    assert isinstance(entry.options, MappingProxyType)
    assert isinstance(entry.options["nested"], MappingProxyType)
    with pytest.raises(TypeError):
        entry.options["x"] = 1  # type: ignore[index]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "middleware:\n  - gzp: {}\n",
            'c.yaml:2: middleware[0]: unknown middleware "gzp" (did you mean "gzip"?)',
        ),
        (
            "middleware:\n  - zzz: {}\n",
            'c.yaml:2: middleware[0]: unknown middleware "zzz" (built-ins: proxy_headers,',
        ),
        (
            "middleware:\n  - my-mw:Thing: {}\n",
            'c.yaml:2: middleware[0]: bad middleware import path "my-mw:Thing"',
        ),
        (
            "middleware:\n  - cors: {}\n  - gzip\n",
            "c.yaml:3: middleware[1]: expected a mapping with one key, the middleware name, "
            'as in "- gzip: {}", got "gzip"',
        ),
        (
            "middleware:\n  - cors: {}\n    gzip: {}\n",
            "c.yaml:2: middleware[0]: expected a mapping with one key, the middleware name, "
            'as in "- gzip: {}", got 2 keys',
        ),
        (
            "middleware:\n  - cors: [a]\n",
            "c.yaml:2: middleware[0].cors: options must be a mapping or null, got a list",
        ),
        (
            "middleware: {cors: {}}\n",
            "c.yaml:1: middleware: expected a list of middleware, got a mapping",
        ),
    ],
)
def test_middleware_rejects(error_of: ErrorOf, text: str, expected: str) -> None:
    assert error_of(text).startswith(expected)
