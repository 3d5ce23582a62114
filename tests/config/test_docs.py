"""docs/configuration.md is generated from the schema and must stay in sync with it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from covetd.config import Config
from covetd.config.docs import render
from covetd.config.fields import iter_settings

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
REGENERATE = "python -m covetd.config.docs > docs/configuration.md  (or: make docs)"


def test_committed_reference_is_in_sync_with_the_schema() -> None:
    assert DOCS.read_text(encoding="utf-8") == render(), f"regenerate it: {REGENERATE}"


def test_every_setting_and_flag_is_documented() -> None:
    text = render()
    for key, setting in iter_settings(Config):
        assert f"| `{key}` |" in text
        if setting.flag:
            assert f"`{setting.flag}`" in text
    for key in ("database.<name>.dsn", "database.<name>.server_settings", "`middleware`"):
        assert key in text


def test_module_prints_the_reference() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "covetd.config.docs"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert result.stdout == render()
