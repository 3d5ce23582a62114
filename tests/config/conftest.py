"""Fixtures for the config tests: write YAML into a temp dir and load it from there.

Files are loaded by a relative name (``c.yaml``) from the temp dir, so error messages
read exactly as a user would see them: ``c.yaml:3: server.workers: ...``.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from covetd.config import Config, ConfigError, load_config

CONFIG_NAME = "c.yaml"

Loader = Callable[..., Config]
ErrorOf = Callable[..., str]


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def load(in_tmp: Path) -> Loader:
    """``load(yaml_text, env={...}, overrides={...})`` -> Config (env is empty by default)."""

    def load(
        text: str,
        *,
        env: Mapping[str, str] | None = None,
        overrides: Mapping[str, object] | None = None,
    ) -> Config:
        Path(CONFIG_NAME).write_text(textwrap.dedent(text), encoding="utf-8")
        return load_config(CONFIG_NAME, overrides, environ=env or {})

    return load


@pytest.fixture
def error_of(load: Loader) -> ErrorOf:
    """``error_of(yaml_text, ...)`` -> the one-line ConfigError message."""

    def error_of(text: str, **kwargs: object) -> str:
        with pytest.raises(ConfigError) as info:
            load(text, **kwargs)
        message = str(info.value)
        assert "\n" not in message
        return message

    return error_of
