"""docs/websocket.md documents every ``websocket.*`` setting of the schema."""

from __future__ import annotations

from pathlib import Path

from covetd.config import Config
from covetd.config.fields import iter_settings

GUIDE = Path(__file__).resolve().parents[3] / "docs" / "websocket.md"


def test_the_guide_lists_every_websocket_setting() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    keys = [key for key, _ in iter_settings(Config) if key.startswith("websocket.")]
    assert len(keys) >= 9, keys
    missing = [key for key in keys if f"| `{key}` |" not in text]
    assert missing == [], f"docs/websocket.md does not document {missing}"
