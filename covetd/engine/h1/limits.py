"""Bounds on what one request may make the server hold (STYLE habit 7)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-request input bounds; the defaults match the config schema's defaults."""

    max_request_line: int = 8192
    max_header_size: int = 65536
    max_headers: int = 100
    max_body_size: int = 10 * 1024 * 1024
