"""Compact UTF-8 JSON for response bodies, with the encoder built once.

``json.dumps`` builds a new C encoder on every call; a JSON response is the most common
thing a handler returns, so the encoder is made here once and reused.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["json_encode"]


def _not_serializable(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# Compact separators, UTF-8 kept as is, NaN and Infinity refused. (No circular-reference
# check: a cycle ends in RecursionError, answered 500.)
_c_make_encoder: Any = getattr(json.encoder, "c_make_encoder", None)
_iterencode: Any = (
    _c_make_encoder(
        None, _not_serializable, json.encoder.encode_basestring, None, ":", ",", False, False, False
    )
    if _c_make_encoder is not None
    else None
)
_fallback = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode


def json_encode(content: Any) -> bytes:
    if _iterencode is not None:
        return "".join(_iterencode(content, 0)).encode("utf-8")
    return _fallback(content).encode("utf-8")
